//! `--tunnel-tools`: the tunnel as MCP tools (`start_tunnel`, `stop_tunnel`,
//! `get_tunnel_status`) and resources (`tunnel://status|url|config|metrics`).

use std::sync::{Arc, Mutex, OnceLock};

use rmcp::model::CallToolResult;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{TunnelConfig, TunnelHandle, TunnelKind, TunnelState};
use crate::{
    model::{ResourceContents, ToolAnnotations},
    resource::ResourceDef,
    tool::ToolDef,
    tool::{error_result, input_schema, parse_args},
};

type Starter = dyn Fn(TunnelConfig, String) -> crate::error::Result<TunnelHandle> + Send + Sync;

/// The tunnel the tools control: started by `--tunnel` or by `start_tunnel`.
#[derive(Default)]
pub(crate) struct TunnelControl {
    handle: Mutex<Option<TunnelHandle>>,
    config: Mutex<Option<TunnelConfig>>,
    local_url: OnceLock<String>,
    starter: OnceLock<Box<Starter>>,
}

impl std::fmt::Debug for TunnelControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelControl").finish_non_exhaustive()
    }
}

impl TunnelControl {
    pub(crate) fn install(
        &self,
        local_url: String,
        config: Option<TunnelConfig>,
        starter: Box<Starter>,
    ) {
        let _ = self.local_url.set(local_url);
        let _ = self.starter.set(starter);
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = config;
    }

    pub(crate) fn set_handle(&self, handle: Option<TunnelHandle>) {
        *self.handle.lock().unwrap_or_else(|e| e.into_inner()) = handle;
    }

    pub(crate) fn handle(&self) -> Option<TunnelHandle> {
        self.handle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn status_json(&self) -> serde_json::Value {
        let Some(handle) = self.handle() else {
            return serde_json::json!({ "status": "stopped", "active": false, "local_url": self.local_url.get() });
        };
        let status = handle.status();
        let metrics = handle.metrics().await.unwrap_or_default();
        serde_json::json!({
            "status": status.state,
            "active": status.state == TunnelState::Ready,
            "kind": status.kind,
            "url": status.url,
            "mcp_url": status.mcp_url(),
            "ws_url": status.ws_url(),
            "local_url": status.local_url,
            "pid": status.pid,
            "cloudflared_version": status.cloudflared_version,
            "uptime_seconds": status.uptime_seconds(),
            "restarts": status.restarts,
            "ready_connections": metrics.ready_connections,
            "total_requests": metrics.total_requests,
            "request_errors": metrics.request_errors,
            "last_error": status.last_error,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
struct StartArgs {
    /// Local port to expose (default: this server's listener).
    port: Option<u16>,
    /// Local host to expose (default 127.0.0.1).
    host: Option<String>,
    /// Path of the MCP endpoint on that origin, used in the printed URL (default /mcp).
    path: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
struct NoArgs {}

fn json_result(value: serde_json::Value) -> CallToolResult {
    let mut result = CallToolResult::structured(value.clone());
    result.content = vec![crate::content::Content::text(value.to_string())];
    result
}

/// The tools and resources, bound to `control`.
pub(crate) fn definitions(control: &Arc<TunnelControl>) -> (Vec<ToolDef>, Vec<ResourceDef>) {
    let start = {
        let control = control.clone();
        ToolDef::new("start_tunnel", input_schema::<StartArgs>(), move |_, args| {
            let control = control.clone();
            async move {
                let args: StartArgs = match parse_args("start_tunnel", args) {
                    Ok(args) => args,
                    Err(e) => return e,
                };
                if control.handle().is_some_and(|h| h.status().state != TunnelState::Stopped) {
                    return json_result(control.status_json().await);
                }
                let Some(starter) = control.starter.get() else {
                    return error_result(&"this server has no network listener to tunnel to");
                };
                let default_url = control.local_url.get().cloned().unwrap_or_default();
                let local_url = match (args.host, args.port) {
                    (None, None) => default_url,
                    (host, port) => {
                        let default_port = default_url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(80);
                        format!("http://{}:{}", host.as_deref().unwrap_or("127.0.0.1"), port.unwrap_or(default_port))
                    }
                };
                let config = control.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let config = config.unwrap_or_else(TunnelConfig::quick);
                match starter(config, local_url) {
                    Ok(handle) => {
                        control.set_handle(Some(handle.clone()));
                        let ready = handle.ready().await;
                        let mut status = control.status_json().await;
                        if let Some(path) = args.path {
                            status["mcp_url"] = handle.status().url.map(|u| format!("{u}{path}")).into();
                        }
                        match ready {
                            Ok(_) => json_result(status),
                            Err(e) => error_result(&format_args!("tunnel did not become ready: {e}")),
                        }
                    }
                    Err(e) => error_result(&format_args!("{e:#}")),
                }
            }
        })
        .with_description("Start a Cloudflare tunnel to this server (or another local port) and return its public URL.")
        .with_annotations(ToolAnnotations::new().open_world(true).idempotent(true))
    };
    let stop = {
        let control = control.clone();
        ToolDef::new("stop_tunnel", input_schema::<NoArgs>(), move |_, _| {
            let control = control.clone();
            async move {
                if let Some(handle) = control.handle() {
                    handle.stop().await;
                }
                json_result(control.status_json().await)
            }
        })
        .with_description("Stop the tunnel; the server keeps serving locally.")
        .with_annotations(ToolAnnotations::new().destructive(true).idempotent(true))
    };
    let status = {
        let control = control.clone();
        ToolDef::new("get_tunnel_status", input_schema::<NoArgs>(), move |_, _| {
            let control = control.clone();
            async move { json_result(control.status_json().await) }
        })
        .with_description("Tunnel status: state, public URL, local URL, pid, cloudflared version, uptime, restarts, ready connections and request counts.")
        .with_annotations(ToolAnnotations::new().read_only(true))
    };
    let resource =
        |uri: &'static str, name: &'static str, mime: &'static str, description: &'static str| {
            let control = control.clone();
            ResourceDef::new(uri, name, move |_, uri, _| {
                let control = control.clone();
                async move {
                    let status = control.status_json().await;
                    let text = match name {
                        "tunnel-url" => status["url"].as_str().unwrap_or_default().to_owned(),
                        "tunnel-config" => config_json(&control).to_string(),
                        "tunnel-metrics" => serde_json::json!({
                            "ready_connections": status["ready_connections"],
                            "total_requests": status["total_requests"],
                            "request_errors": status["request_errors"],
                            "restarts": status["restarts"],
                            "uptime_seconds": status["uptime_seconds"],
                        })
                        .to_string(),
                        _ => status.to_string(),
                    };
                    Ok(vec![ResourceContents::text(text, uri).with_mime_type(mime)])
                }
            })
            .with_description(description)
            .with_mime_type(mime)
        };
    let resources = vec![
        resource(
            "tunnel://status",
            "tunnel-status",
            "application/json",
            "The tunnel's status.",
        ),
        resource(
            "tunnel://url",
            "tunnel-url",
            "text/plain",
            "The tunnel's public URL (empty when not ready).",
        ),
        resource(
            "tunnel://config",
            "tunnel-config",
            "application/json",
            "The tunnel's configuration (no secrets).",
        ),
        resource(
            "tunnel://metrics",
            "tunnel-metrics",
            "application/json",
            "Tunnel request counters from cloudflared.",
        ),
    ];
    (vec![start, stop, status], resources)
}

fn config_json(control: &TunnelControl) -> serde_json::Value {
    let config = control
        .config
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(config) = config else {
        return serde_json::json!({ "kind": "quick", "local_url": control.local_url.get() });
    };
    let (kind, hostname) = match &config.kind {
        TunnelKind::Quick => ("quick", None),
        TunnelKind::Named { hostname, .. } => ("named", Some(hostname.clone())),
    };
    serde_json::json!({
        "kind": kind,
        "public_hostname": hostname,
        "local_url": control.local_url.get(),
        "cloudflared": config.cloudflared.display().to_string(),
        "protocol": config.protocol,
        "ready_timeout_seconds": config.ready_timeout.as_secs(),
    })
}
