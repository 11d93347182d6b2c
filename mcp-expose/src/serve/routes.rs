//! The routes beside MCP: the landing page (`GET /`, `/.well-known/mcp`), `/health`,
//! `/ready`, `/metrics`, and the 404 that says where MCP is.

use axum::{
    Json,
    extract::{State, ws::WebSocketUpgrade},
    http::StatusCode,
    response::{IntoResponse, Response},
};

use super::app::AppState;
use crate::{
    security::{policy, principal::Authenticated},
    transport::ws,
    web::json_error,
};

pub(super) async fn ws_route(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    use axum::extract::FromRequestParts as _;
    let (mut parts, body) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) if !state.mounts.is_empty() => {
            let root = state.mounts.iter().find_map(|m| m.root_socket.as_ref());
            match root {
                Some(accept) => {
                    let caller = parts
                        .extensions
                        .get::<std::sync::Arc<crate::session::Caller>>()
                        .cloned();
                    accept(upgrade, caller)
                }
                // A gateway has no server at `/`.
                None => not_found(State(state)).await,
            }
        }
        Ok(upgrade) => ws::upgrade(
            upgrade,
            &parts,
            &state.handler,
            &state.ws,
            state.sessions.child_token(),
        ),
        // A browser, not a WebSocket client: show the landing page.
        Err(_) => {
            info_route(
                State(state),
                axum::extract::Request::from_parts(parts, body),
            )
            .await
        }
    }
}

/// `GET /` without an upgrade: what this server is and where to connect.
pub(super) async fn info_route(
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Response {
    use crate::observe::landing::{Landing, Listed, Tools};
    let visible = !state.auth_required || request.extensions().get::<Authenticated>().is_some();
    let shared = state.handler.state();
    let identity = &shared.identity;
    let (http_origins, ws_origins) = origins(&state, &request);
    let servers = state
        .servers
        .iter()
        .map(|server| Listed {
            name: server.name.clone(),
            http_urls: http_origins
                .iter()
                .map(|o| format!("{o}{}/mcp", server.prefix))
                .collect(),
            ws_urls: ws_origins
                .iter()
                .map(|o| format!("{o}{}/ws", server.prefix))
                .collect(),
            sse_urls: http_origins
                .iter()
                .map(|o| format!("{o}{}/sse", server.prefix))
                .collect(),
            tools: if server.mounted {
                Tools::Bridged
            } else if visible {
                Tools::Listed(
                    shared
                        .registry
                        .tools
                        .iter()
                        .map(|t| t.tool.clone())
                        .collect(),
                )
            } else {
                Tools::Hidden
            },
        })
        .collect();
    let landing = Landing {
        name: identity
            .title
            .clone()
            .unwrap_or_else(|| identity.name.clone()),
        version: identity.version.clone(),
        description: identity.description.clone(),
        servers,
        auth_required: state.auth_required,
    };
    let wants_html = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html && request.uri().path() == "/" {
        axum::response::Html(landing.html()).into_response()
    } else {
        Json(landing.json()).into_response()
    }
}

/// The origins (`https://host`, `http://127.0.0.1:8000`) a visitor can reach MCP at, for HTTP
/// and WebSocket, those the visitor came through first. A visitor from outside (through the
/// tunnel, a trusted proxy or the public hostname) is shown only public ones: a loopback
/// address means nothing to them.
fn origins(state: &AppState, request: &axum::extract::Request) -> (Vec<String>, Vec<String>) {
    let host = request
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or_default().to_ascii_lowercase());
    let mut public: Vec<String> = Vec::new();
    if let Some(origin) = request.extensions().get::<policy::PublicOrigin>() {
        public.push(origin.0.clone());
    }
    let tunnel_host = state.tunnel.hostname();
    let mut from_outside = !public.is_empty();
    for name in [tunnel_host.as_ref(), state.public_hostname.as_ref()]
        .into_iter()
        .flatten()
    {
        let origin = format!("https://{name}");
        if host.as_deref() == Some(name.as_str()) {
            from_outside = true;
            public.insert(0, origin);
        } else if !public.contains(&origin) {
            public.push(origin);
        }
    }
    public.dedup();
    let mut http: Vec<String> = Vec::new();
    let mut ws: Vec<String> = Vec::new();
    if state.http_addr.is_some() {
        http.extend(public.iter().cloned());
    }
    if state.ws_addr.is_some() {
        ws.extend(public.iter().map(|o| o.replacen("http", "ws", 1)));
    }
    if !from_outside {
        http.extend(state.http_addr.map(|a| format!("http://{a}")));
        ws.extend(state.ws_addr.map(|a| format!("ws://{a}")));
    }
    (http, ws)
}

/// `GET /metrics`: Prometheus text.
pub(super) async fn metrics_route(State(state): State<AppState>) -> Response {
    // What is not counted as it happens is read now: mounted servers and the tunnel.
    for mount in &state.mounts {
        mount.health.record(&mount.prefix);
    }
    state.tunnel.record_metrics().await;
    let headers = [(
        axum::http::header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    )];
    (headers, crate::observe::metrics::render()).into_response()
}

/// Readiness: every transport bound (they are, once this answers), not shutting down, bridged
/// children up, and a required tunnel ready.
pub(super) async fn ready_route(State(state): State<AppState>) -> Response {
    let draining = state
        .handler
        .state()
        .draining
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut components = serde_json::Map::new();
    // Behind auth these open routes say whether, not where or why (no addresses, URLs or
    // child failure text for anonymous visitors).
    let detailed = !state.auth_required;
    components.insert(
        "transports".into(),
        if detailed {
            serde_json::json!({ "ready": true, "detail": state.health["transports"] })
        } else {
            serde_json::json!({ "ready": true })
        },
    );
    components.insert("shutdown".into(), serde_json::json!({ "ready": !draining }));
    for mount in &state.mounts {
        let name = format!("child{}", mount.prefix);
        components.insert(name, serde_json::json!({ "ready": mount.health.healthy() }));
    }
    if let Some(tunnel) = state.tunnel.readiness(detailed) {
        components.insert("tunnel".into(), tunnel);
    }
    #[cfg(feature = "redis")]
    if let Some(redis) = &state.shared {
        let failure = redis.failure();
        let mut shared = serde_json::json!({ "ready": failure.is_none() });
        if let (Some(failure), true) = (failure, detailed) {
            shared["detail"] = failure.into();
        }
        components.insert("state".into(), shared);
    }
    let ready = components.values().all(|c| c["ready"] == true);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({ "ready": ready, "components": components })),
    )
        .into_response()
}

pub(super) async fn health_route(State(state): State<AppState>) -> Response {
    let mut health = state.health.as_ref().clone();
    if state.auth_required {
        // Open to anyone: no addresses or failure text without the token (see /metrics).
        if let Some(health) = health.as_object_mut() {
            health.remove("transports");
            health.remove("servers");
        }
    }
    if !state.mounts.is_empty() {
        let detailed = !state.auth_required;
        let healthy = state.mounts.iter().all(|m| m.health.healthy());
        match state.mounts.as_slice() {
            [mount] if mount.prefix.is_empty() => {
                health["child"] = mount.health.describe(detailed);
            }
            mounts => {
                for mount in mounts {
                    let mut entry = mount.health.describe(detailed);
                    let name = mount.prefix.trim_start_matches('/');
                    // The server's URLs, when the visitor may see addresses.
                    if let Some(urls) = health["servers"][name].as_object() {
                        for (key, url) in urls {
                            entry[key] = url.clone();
                        }
                    }
                    health["servers"][name] = entry;
                }
            }
        }
        health["status"] = if healthy { "ok" } else { "unavailable" }.into();
        let status = if healthy {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return (status, Json(health)).into_response();
    }
    Json(health).into_response()
}

pub(super) async fn not_found(State(state): State<AppState>) -> Response {
    let message = match state.servers.as_slice() {
        [single] if single.prefix.is_empty() => {
            "Not Found: MCP is served at /mcp (HTTP), /ws (WebSocket) and /sse (legacy HTTP+SSE)"
                .to_owned()
        }
        servers => format!(
            "Not Found: MCP is served at /NAME/mcp (HTTP), /NAME/ws (WebSocket) and /NAME/sse (legacy HTTP+SSE) for each server: {}",
            servers
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    json_error(StatusCode::NOT_FOUND, &message)
}
