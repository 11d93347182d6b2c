//! Streamable HTTP: rmcp's client against the built `bioseq` binary, and the HTTP surface
//! (health, JSON error bodies, Host validation, anti-buffering headers, stateless mode).

use mcp_expose_tests::{
    ServerProcess, assert_gc_ggccat, http_messages, initialize, initialized, request, sample,
};
use rmcp::{
    ServiceExt as _, model::CallToolRequestParams, transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};

#[tokio::test]
async fn rmcp_client_lists_and_calls_tools_over_http() {
    let server = ServerProcess::start("bioseq", &["--http", "0", "--ws", "0"]).await;
    let transport = StreamableHttpClientTransport::from_uri(server.http().to_owned());
    let client = ().serve(transport).await.expect("initialize over HTTP");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 5);
    let arguments = json!({ "seq": "GGCCAT" })
        .as_object()
        .cloned()
        .unwrap_or_default();
    let result = client
        .call_tool(CallToolRequestParams::new("gc_content").with_arguments(arguments))
        .await
        .expect("tools/call");
    assert_gc_ggccat(
        result.structured_content.expect("structured")["result"]
            .as_f64()
            .expect("number"),
    );
    client.cancel().await.expect("close");
}

fn post(url: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
}

#[tokio::test]
async fn health_errors_and_host_policy() {
    let server = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let base = server.http().trim_end_matches("/mcp").to_owned();

    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["name"], "bioseq");
    assert_eq!(health["transports"]["http"], server.http());

    let missing = reqwest::get(format!("{base}/nope")).await.expect("404");
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.expect("JSON body on 404");
    assert!(body["error"]["message"].is_string());

    let foreign = post(server.http())
        .header("host", "evil.example.com")
        .header("origin", "http://evil.example.com")
        .body(initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    assert_eq!(foreign.status(), 403);
    let body: Value = foreign.json().await.expect("JSON body on 403");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("evil.example.com"))
    );

    let bad_accept = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "text/plain")
        .body(initialize(1, json!({})))
        .send()
        .await
        .expect("request");
    assert!(bad_accept.status().is_client_error());
    assert_eq!(bad_accept.headers()["content-type"], "application/json");
    let body: Value = bad_accept
        .json()
        .await
        .expect("rmcp's plain-text error is turned into JSON");
    assert!(body["error"]["message"].is_string());

    let ok = post(server.http())
        .body(initialize(1, json!({})))
        .send()
        .await
        .expect("initialize");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-accel-buffering"], "no");
    assert_eq!(ok.headers()["cache-control"], "no-cache, no-transform");
    assert!(ok.headers().contains_key("mcp-session-id"));
}

#[tokio::test]
async fn bad_bodies_get_json_rpc_codes_and_the_session_keeps_working() {
    let server = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let url = server.http();
    let opened = post(url)
        .body(initialize(1, json!({})))
        .send()
        .await
        .expect("initialize");
    let session = opened.headers()["mcp-session-id"].clone();
    let in_session = || post(url).header("mcp-session-id", session.clone());
    let sent = in_session()
        .body(initialized())
        .send()
        .await
        .expect("initialized");
    assert_eq!(sent.status(), 202);

    // Not JSON: 400 with -32700; JSON but no JSON-RPC message: 400 with -32600 (not rmcp's
    // 415, which would tell a client its content type was wrong). Each body says why.
    let garbage = [
        ("{\"broken\": ", -32700, "Parse error"),
        ("", -32700, "Parse error"),
        ("[]", -32600, "Invalid Request"),
        ("42", -32600, "Invalid Request"),
        (r#"{"jsonrpc":"2.0","id":2}"#, -32600, "Invalid Request"),
        (
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":5}"#,
            -32600,
            "Invalid Request",
        ),
    ];
    for (body, code, words) in garbage {
        let answer = in_session().body(body).send().await.expect("request");
        assert_eq!(answer.status(), 400, "{body:?}");
        assert_eq!(answer.headers()["content-type"], "application/json");
        let error: Value = answer.json().await.expect("a JSON body");
        assert_eq!(error["error"]["code"], code, "{body:?}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(words), "{body:?}: {error}");
    }
    // An unknown method and bad params are answered in the session, with the request's id.
    for (id, body, code) in [
        (4, request(4, "nope", json!({})), -32601),
        (
            5,
            request(
                5,
                "tools/call",
                json!({ "name": "gc_content", "arguments": "x" }),
            ),
            -32602,
        ),
    ] {
        let answer = in_session().body(body).send().await.expect("request");
        assert_eq!(answer.status(), 200);
        let kind = answer.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let messages = http_messages(&kind, &answer.text().await.expect("body"));
        let reply = messages.iter().find(|m| m["id"] == id).expect("the reply");
        assert_eq!(reply["error"]["code"], code, "{reply}");
    }
    // The session still serves.
    let call = request(
        6,
        "tools/call",
        json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
    );
    let answer = in_session().body(call).send().await.expect("call");
    let kind = answer.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let messages = http_messages(&kind, &answer.text().await.expect("body"));
    let reply = messages.iter().find(|m| m["id"] == 6).expect("the reply");
    assert_gc_ggccat(
        reply["result"]["structuredContent"]["result"]
            .as_f64()
            .expect("a number"),
    );
}

#[tokio::test]
async fn stateless_mode_answers_in_json_without_a_session() {
    let server = ServerProcess::start("bioseq", &["--http", "0", "--stateless"]).await;
    let response = post(server.http())
        .body(initialize(1, json!({})))
        .send()
        .await
        .expect("initialize");
    assert_eq!(response.status(), 200);
    assert!(!response.headers().contains_key("mcp-session-id"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("application/json"))
    );
    let call = json!({
        "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "gc_content", "arguments": { "seq": "GGCCAT" } },
    });
    let response = post(server.http())
        .header("mcp-protocol-version", "2025-06-18")
        .body(call.to_string())
        .send()
        .await
        .expect("call");
    let body: Value = response.json().await.expect("JSON response");
    assert_gc_ggccat(
        body["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully_and_exits_zero() {
    let mut server = ServerProcess::start("bioseq", &["--http", "0", "--ws", "0"]).await;
    let pid = server.child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(15), server.child.wait())
        .await
        .expect("exits within 15 s of SIGTERM")
        .expect("wait");
    assert!(status.success(), "exit status {status}");
}

#[tokio::test]
async fn bearer_tokens_guard_http_and_websocket_but_not_health() {
    let dir = std::env::temp_dir().join(format!("mcp-expose-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tokens");
    std::fs::write(&file, "# rotation: old and new\nold-token\nnew-token\n").expect("tokens");
    let path = file.display().to_string();
    let server = ServerProcess::start(
        "bioseq",
        &["--http", "0", "--ws", "0", "--auth-token-file", &path],
    )
    .await;
    let send = |token: Option<&str>| {
        let mut request = post(server.http()).body(initialize(1, json!({})));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.send()
    };
    let denied = send(None).await.expect("request");
    assert_eq!(denied.status(), 401);
    assert_eq!(
        denied.headers()["www-authenticate"],
        r#"Bearer realm="mcp""#
    );
    let body: Value = denied.json().await.expect("JSON body on 401");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Bearer"))
    );
    let wrong = send(Some("nope")).await.expect("request");
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .is_ok_and(|v| v.contains("invalid_token"))
    );
    assert_eq!(
        send(Some("old-token")).await.expect("request").status(),
        200
    );
    assert_eq!(
        send(Some("new-token")).await.expect("request").status(),
        200
    );
    let health = reqwest::get(server.http().replace("/mcp", "/health"))
        .await
        .expect("health");
    assert_eq!(health.status(), 200, "/health stays open");
    let health = health.text().await.expect("body");
    assert!(
        health.contains(r#""status":"ok""#) && !health.contains("127.0.0.1"),
        "no addresses for anonymous visitors: {health}"
    );

    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let refused = tokio_tungstenite::connect_async(server.ws()).await;
    assert!(
        refused.is_err(),
        "a WebSocket upgrade without a token is refused"
    );
    let mut request = server.ws().into_client_request().expect("request");
    request
        .headers_mut()
        .insert("authorization", "Bearer new-token".parse().expect("header"));
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
    let mut request = server.ws().into_client_request().expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "mcp, bearer.old-token".parse().expect("header"),
    );
    let (_, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("browser-style token");
    assert_eq!(response.headers()["sec-websocket-protocol"], "mcp");
}

#[tokio::test]
async fn sessionless_2026_07_28_requests_and_older_revisions_on_one_endpoint() {
    let server = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "t", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let sessionless = |method: &str, name: Option<&str>, params: Value| {
        let mut request = post(server.http())
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        request.body(body.to_string()).send()
    };
    let data = |text: String| -> Value {
        let line = text
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| !d.is_empty())
            .map(str::to_owned)
            .unwrap_or(text);
        serde_json::from_str(&line).expect("JSON")
    };
    let discover = sessionless("server/discover", None, json!({ "_meta": meta }))
        .await
        .expect("discover");
    assert!(!discover.headers().contains_key("mcp-session-id"));
    let discover = data(discover.text().await.expect("body"));
    let versions = discover["result"]["supportedVersions"]
        .as_array()
        .expect("versions")
        .clone();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"] {
        assert!(
            versions.contains(&json!(version)),
            "{version} missing from {versions:?}"
        );
    }
    let params = json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" }, "_meta": meta });
    let call = data(
        sessionless("tools/call", Some("gc_content"), params)
            .await
            .expect("call")
            .text()
            .await
            .expect("body"),
    );
    assert_gc_ggccat(
        call["result"]["structuredContent"]["result"]
            .as_f64()
            .unwrap_or(f64::NAN),
    );

    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
        let response = post(server.http())
            .body(init.to_string())
            .send()
            .await
            .expect("initialize");
        assert!(
            response.headers().contains_key("mcp-session-id"),
            "{version} gets a session"
        );
        let body = data(response.text().await.expect("body"));
        assert_eq!(body["result"]["protocolVersion"], version);
    }
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_through_shutdown_and_name_each_calls_client() {
    let mut server = ServerProcess::start(
        "bioseq",
        &[
            "--http",
            "0",
            "--log-format",
            "json",
            "--log-level",
            "debug",
        ],
    )
    .await;
    let ok = post(server.http())
        .body(initialize(1, json!({})))
        .send()
        .await
        .expect("initialize");
    assert_eq!(ok.status(), 200);
    let session = mcp_expose_tests::session_id(&ok);
    let in_session = |body: String| {
        post(server.http())
            .header("mcp-session-id", &session)
            .body(body)
            .send()
    };
    in_session(initialized()).await.expect("initialized");
    let call = in_session(request(
        2,
        "tools/call",
        json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
    ))
    .await
    .expect("tools/call");
    assert_eq!(call.status(), 200);
    let _ = call.text().await;
    let pid = server.child.id().expect("pid");
    mcp_expose_tests::kill("-TERM", pid);
    server
        .line_containing("shutdown 4/4", std::time::Duration::from_secs(15))
        .await
        .expect("shutdown logged");
    let _ = server.child.wait().await;
    assert!(server.log.len() >= 5, "{:?}", server.log);
    for line in &server.log {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["fields"].is_object(),
            "{line}"
        );
    }
    // One debug event per tool call, naming the client.
    let call = server
        .log
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|value| value["fields"]["message"] == "tool call")
        .unwrap_or_else(|| panic!("no tool call event: {:?}", server.log));
    let fields = &call["fields"];
    assert_eq!(fields["tool"], "gc_content", "{call}");
    assert_eq!(fields["transport"], "http", "{call}");
    assert_eq!(fields["client"], "127.0.0.1", "{call}");
    assert!(fields["duration_ms"].is_number(), "{call}");
}

/// The value of a Prometheus sample whose line starts with `prefix` (name and labels).
#[tokio::test]
async fn metrics_count_exactly_the_calls_made() {
    let mut server =
        ServerProcess::start("bioseq", &["--http", "0", "--metrics-bind", "127.0.0.1:0"]).await;
    let line = server
        .line_containing("metrics on http://", std::time::Duration::from_secs(5))
        .await;
    let line = line
        .or_else(|| {
            server
                .log
                .iter()
                .find(|l| l.contains("metrics on http://"))
                .cloned()
        })
        .expect("metrics address logged");
    let url = line[line.find("http://").expect("url")..].trim().to_owned();
    let scrape = || async {
        reqwest::get(&url)
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    };
    let before = scrape().await;
    let client = ()
        .serve(StreamableHttpClientTransport::from_uri(
            server.http().to_owned(),
        ))
        .await
        .expect("initialize");
    for i in 0..10 {
        let arguments = json!({ "seq": format!("GGCCAT{}", "A".repeat(i)) })
            .as_object()
            .cloned()
            .unwrap_or_default();
        client
            .call_tool(CallToolRequestParams::new("gc_content").with_arguments(arguments))
            .await
            .expect("call");
    }
    let arguments = json!({ "seq": "XYZ" })
        .as_object()
        .cloned()
        .unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new("gc_content").with_arguments(arguments))
        .await
        .expect("call");
    client.cancel().await.expect("close");
    let after = scrape().await;
    let calls = |text: &str, outcome: &str| {
        sample(
            text,
            "mcp_tool_calls_total",
            &[
                "tool=\"gc_content\"",
                "transport=\"http\"",
                &format!("outcome=\"{outcome}\""),
            ],
        )
    };
    assert_eq!(calls(&after, "ok") - calls(&before, "ok"), 10.0, "{after}");
    assert_eq!(
        calls(&after, "error") - calls(&before, "error"),
        1.0,
        "{after}"
    );
    let count = |text: &str| {
        sample(
            text,
            "mcp_tool_duration_seconds_count",
            &["tool=\"gc_content\""],
        )
    };
    assert_eq!(count(&after) - count(&before), 11.0, "{after}");
    let requests = |text: &str, method: &str| {
        sample(
            text,
            "mcp_requests_total",
            &["transport=\"http\"", &format!("method=\"{method}\"")],
        )
    };
    assert_eq!(
        requests(&after, "initialize") - requests(&before, "initialize"),
        1.0
    );
    assert_eq!(
        requests(&after, "tools/call") - requests(&before, "tools/call"),
        11.0
    );

    // On the main listener /metrics is there too.
    let main = reqwest::get(server.http().replace("/mcp", "/metrics"))
        .await
        .expect("scrape main");
    assert_eq!(main.status(), 200);

    // Bytes in and out of /mcp move by exactly the bodies exchanged.
    let bytes = |text: &str, direction: &str| {
        sample(
            text,
            "mcp_bytes_total",
            &["transport=\"http\"", &format!("direction=\"{direction}\"")],
        )
    };
    let before = scrape().await;
    let body = initialize(1, json!({}));
    let answer = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.clone())
        .send()
        .await
        .expect("initialize")
        .text()
        .await
        .expect("answer");
    let after = scrape().await;
    assert_eq!(
        bytes(&after, "in") - bytes(&before, "in"),
        body.len() as f64
    );
    assert_eq!(
        bytes(&after, "out") - bytes(&before, "out"),
        answer.len() as f64,
        "{answer}"
    );
}
