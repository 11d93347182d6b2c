//! `mcp-expose gateway`: two stdio servers (bioseq and a Python server) under path prefixes on
//! one port.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use mcp_expose_tests::{ServerProcess, assert_gc_ggccat, bin, initialize, initialized, request};
use rmcp::{
    ServiceExt as _, model::CallToolRequestParams, transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::Message};

fn config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mcp-expose-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("config");
    path
}

fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

#[tokio::test]
async fn two_servers_under_prefixes_on_one_port() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/child_server.py");
    let text = format!(
        "[servers.bioseq]\ncommand = [{}]\n\n[servers.py]\ncommand = [\"python3\", {}]\nchild = \"shared\"\n",
        toml_string(&bin("bioseq").display().to_string()),
        toml_string(&script.display().to_string()),
    );
    let path = config("two.toml", &text);
    let path = path.display().to_string();
    let mut server = ServerProcess::start(
        "mcp-expose",
        &["gateway", &path, "--http", "0", "--ws", "0"],
    )
    .await;
    // Each server's URLs are logged; the first is bioseq's.
    let base = server.http().trim_end_matches("/bioseq/mcp").to_owned();
    assert!(
        server.logged(&format!("{base}/py/mcp"))
            || server
                .line_containing(&format!("{base}/py/mcp"), Duration::from_secs(5))
                .await
                .is_some(),
        "{:?}",
        server.log
    );

    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(format!(
            "{base}/bioseq/mcp"
        )))
        .await
        .expect("initialize bioseq");
    let arguments = json!({ "seq": "GGCCAT" })
        .as_object()
        .cloned()
        .unwrap_or_default();
    let result = client
        .call_tool(CallToolRequestParams::new("gc_content").with_arguments(arguments))
        .await
        .expect("call");
    assert_gc_ggccat(
        result.structured_content.expect("structured")["result"]
            .as_f64()
            .expect("number"),
    );
    client.cancel().await.expect("close");

    let ws = format!("{}/py/ws", base.replace("http://", "ws://"));
    let (mut socket, _) = connect_async(ws).await.expect("handshake");
    socket
        .send(Message::text(initialize(0, json!({}))))
        .await
        .expect("send");
    let mut frames = Vec::new();
    socket
        .send(Message::text(initialized()))
        .await
        .expect("send");
    socket
        .send(Message::text(request(
            1,
            "tools/call",
            json!({ "name": "echo", "arguments": { "text": "via gateway" } }),
        )))
        .await
        .expect("send");
    while frames.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(20), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                frames.push(serde_json::from_str::<Value>(&text).expect("JSON"))
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected a frame, got {other:?}"),
        }
    }
    assert_eq!(frames[0]["result"]["serverInfo"]["name"], "py-child");
    assert_eq!(frames[1]["result"]["content"][0]["text"], "via gateway");

    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["status"], "ok", "{health}");
    assert!(
        health["servers"]["bioseq"].is_object() && health["servers"]["py"].is_object(),
        "{health}"
    );
    assert_eq!(
        health["servers"]["py"]["http"],
        format!("{base}/py/mcp"),
        "{health}"
    );
    assert_eq!(
        health["servers"]["py"]["ws"],
        format!("{}/py/ws", base.replace("http://", "ws://")),
        "{health}"
    );
    assert_eq!(
        reqwest::get(format!("{base}/nope/mcp"))
            .await
            .expect("404")
            .status(),
        404
    );
}

/// Every URL the gateway shows (logs, `/`, `/.well-known/mcp`, `/health`, the 404, the tunnel's
/// banner and client configs) names a server's own endpoint, and each one answers.
#[tokio::test]
async fn every_url_the_gateway_shows_is_a_servers_own_and_answers() {
    let bioseq = toml_string(&bin("bioseq").display().to_string());
    // `command` as one string is split as a shell would.
    let text =
        format!("[servers.bio]\ncommand = [{bioseq}]\n\n[servers.seq]\ncommand = {bioseq}\n");
    let path = config("urls.toml", &text);
    let double = std::path::Path::new(env!("CARGO_BIN_EXE_cloudflared"));
    let mut server = ServerProcess::start_with_env(
        "mcp-expose",
        &[
            "gateway",
            path.to_str().expect("path"),
            "--http",
            "0",
            "--tunnel",
            "--cloudflared",
            double.to_str().expect("path"),
        ],
        &[],
    )
    .await;
    let banner = server
        .line_containing("Claude Code", Duration::from_secs(30))
        .await
        .map(|_| server.log.join("\n"))
        .unwrap_or_else(|| panic!("no tunnel banner:\n{}", server.log.join("\n")));
    let token = server
        .log
        .iter()
        .find_map(|l| l.split("generated access token").nth(1))
        .and_then(|rest| rest.rsplit(' ').next())
        .expect("a generated token")
        .to_owned();
    let base = server.http().trim_end_matches("/bio/mcp").to_owned();
    // Our own lines (cloudflared's, relayed at debug or info, print its bare tunnel URL).
    let ours: Vec<&str> = banner
        .lines()
        .filter(|l| !l.contains(" cloudflared: "))
        .collect();
    let ours = ours.join("\n");
    let public: Vec<&str> = ours
        .split_whitespace()
        .filter(|w| w.starts_with("https://") && w.contains("trycloudflare.com"))
        .collect();
    assert!(!public.is_empty(), "{banner}");
    for url in &public {
        assert!(
            url.ends_with("/bio/mcp") || url.ends_with("/seq/mcp"),
            "a banner URL that is no server's: {url}\n{banner}"
        );
    }
    assert!(
        banner.contains("/bio/ws") && banner.contains("/seq/ws"),
        "{banner}"
    );
    assert!(
        banner.contains("\"bio\"") && banner.contains("\"seq\""),
        "configs per server: {banner}"
    );

    let get = |path: &str, accept: &str| {
        reqwest::Client::new()
            .get(format!("{base}{path}"))
            .header("accept", accept)
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    let page = get("/", "text/html").await.expect("GET /");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    for url in [
        format!("{base}/bio/mcp"),
        format!("{base}/seq/mcp"),
        format!("{}/seq/ws", base.replace("http://", "ws://")),
    ] {
        assert!(html.contains(&url), "{url} missing from the page:\n{html}");
    }
    let info: Value = get("/.well-known/mcp", "application/json")
        .await
        .expect("info")
        .json()
        .await
        .expect("JSON");
    let mut listed = Vec::new();
    for server in info["servers"].as_array().expect("servers") {
        for url in server["endpoints"]["streamable_http"]
            .as_array()
            .expect("urls")
        {
            listed.push(url.as_str().expect("url").to_owned());
        }
    }
    assert!(
        listed.iter().any(|u| u.ends_with("/bio/mcp"))
            && listed.iter().any(|u| u.ends_with("/seq/mcp")),
        "{info}"
    );
    // Every local URL listed answers an initialize (the public ones go through the tunnel).
    for url in listed.iter().filter(|u| u.starts_with("http://")) {
        let response = reqwest::Client::new()
            .post(url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize(1, json!({})))
            .send()
            .await
            .expect("initialize");
        assert_eq!(response.status(), 200, "{url}");
    }
    assert!(
        !info.to_string().contains(&format!("{base}/mcp\"")),
        "no /mcp of its own: {info}"
    );
    // A visitor through the tunnel is shown the public URLs only: loopback means nothing there.
    let tunnel_host = public[0]
        .trim_start_matches("https://")
        .split('/')
        .next()
        .expect("host")
        .to_owned();
    let outside: Value = reqwest::Client::new()
        .get(format!("{base}/.well-known/mcp"))
        .header("host", &tunnel_host)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("info")
        .json()
        .await
        .expect("JSON");
    let endpoints = outside["servers"][0]["endpoints"].to_string();
    assert!(
        endpoints.contains(&format!("https://{tunnel_host}/bio/mcp")),
        "{outside}"
    );
    assert!(!endpoints.contains("127.0.0.1"), "{outside}");
    // There is no /mcp: the 404 says where MCP is.
    let missing = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("JSON 404");
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("/NAME/mcp") && message.contains("bio, seq"),
        "{message}"
    );
}

#[test]
fn a_bad_config_is_an_error_naming_the_line() {
    let path = config(
        "bad.toml",
        "[servers.a]\ncommand = [\"true\"]\nchild = \"sharde\"\n",
    );
    let output = std::process::Command::new(bin("mcp-expose"))
        .args(["gateway"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("sharde"), "{stderr}");
}

#[test]
fn cloudflared_config_routes_each_server_by_path_or_subdomain() {
    let path = config(
        "print.toml",
        "[servers.github]\ncommand = [\"x\"]\n[servers.db]\ncommand = [\"y\"]\n",
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "gateway",
            path.to_str().expect("path"),
            "--http",
            "8000",
            "--print-cloudflared-config",
        ];
        args.extend_from_slice(&["--public-hostname", "mcp.example.com"]);
        args.extend_from_slice(extra);
        let output = std::process::Command::new(bin("mcp-expose"))
            .args(&args)
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    let by_path = run(&[]);
    assert!(
        by_path.contains("  - hostname: mcp.example.com\n    service: http://127.0.0.1:8000\n"),
        "{by_path}"
    );
    assert!(by_path.contains("https://mcp.example.com/db/mcp"));
    assert!(by_path.trim_end().ends_with("- service: http_status:404"));
    let by_subdomain = run(&["--by-subdomain"]);
    assert!(
        by_subdomain.contains("  - hostname: github.mcp.example.com\n"),
        "{by_subdomain}"
    );
}
