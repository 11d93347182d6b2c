//! `mcp-expose connect URL`: the connector as a child process with piped stdin/stdout, driven
//! the way Claude Desktop drives a stdio server, in front of a real `bioseq` over streamable
//! HTTP and WebSocket, including a server restart on the same port.

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess,
    connector::{Connector, READ_TIMEOUT, assert_gc_result},
    initialize, request,
};
use serde_json::{Value, json};

#[tokio::test]
async fn carries_a_stdio_session_over_http_and_websocket() {
    let server = ServerProcess::start("bioseq", &["--http", "0", "--ws", "0"]).await;
    for url in [server.http(), server.ws()] {
        let mut connector = Connector::start(&[url], &[]).await;
        let init = connector.handshake().await;
        assert_eq!(
            init["result"]["serverInfo"]["name"], "bioseq",
            "{url}: {init}"
        );

        let list = connector
            .call(2, "tools/list", json!({}), READ_TIMEOUT)
            .await;
        let mut names: Vec<&str> = list["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{url}: no tools: {list}"))
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "assembly_stats",
                "find_orfs",
                "gc_content",
                "reverse_complement",
                "translate"
            ],
            "{url}"
        );
        assert_gc_result(&connector.gc_content(3, READ_TIMEOUT).await);

        connector
            .send("{\"jsonrpc\": \"2.0\", \"id\": 4, \"meth")
            .await;
        let parse_error = connector.next(READ_TIMEOUT).await;
        assert_eq!(parse_error["error"]["code"], -32700, "{url}: {parse_error}");
        assert_eq!(parse_error["id"], Value::Null);

        // Concurrent requests each get their own answer, and the session survived the bad line.
        for id in 5..8 {
            connector.send(&request(id, "ping", json!({}))).await;
        }
        let mut ids = Vec::new();
        for _ in 5..8 {
            let reply = connector.next(READ_TIMEOUT).await;
            assert!(reply.get("result").is_some(), "{url}: {reply}");
            ids.push(reply["id"].as_u64().expect("numeric id"));
        }
        ids.sort_unstable();
        assert_eq!(ids, [5, 6, 7], "{url}");

        let status = connector.finish().await;
        assert!(status.success(), "{url}: exit status {status}");
    }
}

#[tokio::test]
async fn stateless_server_answers_in_json_without_a_session() {
    let server = ServerProcess::start("bioseq", &["--http", "0", "--stateless"]).await;
    let mut connector = Connector::start(&[server.http()], &[]).await;
    let init = connector.handshake().await;
    assert!(init.get("result").is_some(), "{init}");
    assert_gc_result(&connector.gc_content(2, READ_TIMEOUT).await);
    assert!(connector.finish().await.success());
}

/// An MCP 2026-07-28 host (no `initialize`, the version in each request's `_meta`) through the
/// connector over HTTP: each request carries the headers that revision requires
/// (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`), so the server answers it (before, it
/// refused `server/discover` with -32020 for want of `MCP-Protocol-Version`).
#[tokio::test]
async fn a_2026_host_gets_its_answers_over_http() {
    let server = ServerProcess::start("bioseq", &["--http", "0"]).await;
    let mut connector = Connector::start(&[server.http()], &[]).await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let discovered = connector
        .call(1, "server/discover", json!({ "_meta": meta }), READ_TIMEOUT)
        .await;
    assert!(
        discovered["result"]["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("2026-07-28"))),
        "{discovered}"
    );
    let params = json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" }, "_meta": meta });
    let reply = connector.call(2, "tools/call", params, READ_TIMEOUT).await;
    assert_gc_result(&reply);
    assert!(connector.finish().await.success());
}

#[tokio::test]
async fn header_env_carries_a_bearer_token() {
    let dir = std::env::temp_dir().join(format!("mcp-expose-connect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("tokens");
    std::fs::write(&file, "connect-token\n").expect("tokens");
    let path = file.display().to_string();
    let server = ServerProcess::start(
        "bioseq",
        &["--http", "0", "--ws", "0", "--auth-token-file", &path],
    )
    .await;
    let env = [("MCP_EXPOSE_TEST_AUTH", "Bearer connect-token")];
    for url in [server.http(), server.ws()] {
        let mut connector = Connector::start(
            &[url, "--header-env", "Authorization=MCP_EXPOSE_TEST_AUTH"],
            &env,
        )
        .await;
        let init = connector.handshake().await;
        assert!(init.get("result").is_some(), "{url}: {init}");
        assert_gc_result(&connector.gc_content(2, READ_TIMEOUT).await);
        assert!(connector.finish().await.success(), "{url}");

        // Without the header the server's 401 comes back as the request's error, promptly.
        let mut refused = Connector::start(&[url], &[]).await;
        refused.send(&initialize(1, json!({}))).await;
        let reply = refused.response(1, READ_TIMEOUT).await;
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("401"), "{url}: {reply}");
        assert!(refused.finish().await.success(), "{url}");
    }

    let unset = Connector::start(
        &[
            server.http(),
            "--header-env",
            "Authorization=MCP_EXPOSE_TEST_UNSET",
        ],
        &[],
    )
    .await;
    let log = unset.stderr.clone();
    let status = unset.finish().await;
    assert!(!status.success(), "a missing variable is an error at start");
    // The stderr reader may lag the exit a little.
    let mut named = false;
    for _ in 0..20 {
        named = log
            .lock()
            .expect("stderr log")
            .join("\n")
            .contains("MCP_EXPOSE_TEST_UNSET is not set");
        if named {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        named,
        "the error names the variable: {:?}",
        log.lock().expect("stderr log")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn survives_a_server_restart_over_http() {
    survives_a_server_restart("http", &["--protocol", "2025-11-25"]).await;
}

/// MCP 2026-07-28 (what the connector speaks to bioseq by default) has no session to lose.
#[tokio::test]
async fn survives_a_server_restart_over_sessionless_http() {
    survives_a_server_restart("http", &[]).await;
}

#[tokio::test]
async fn survives_a_server_restart_over_websocket() {
    survives_a_server_restart("ws", &[]).await;
}

/// Kills the server, starts a new one on the same port, and calls through the same connector:
/// HTTP with sessions sees 404 for the old session and re-initializes; WebSocket reconnects
/// and re-initializes; sessionless HTTP just sends the next request to the new server.
async fn survives_a_server_restart(scheme: &str, extra: &[&str]) {
    let port = free_port().to_string();
    let args = ["--http", port.as_str(), "--ws", port.as_str()];
    let mut server = ServerProcess::start("bioseq", &args).await;
    let url = if scheme == "http" {
        server.http().to_owned()
    } else {
        server.ws().to_owned()
    };
    let mut connect_args = vec![url.as_str()];
    connect_args.extend_from_slice(extra);
    let mut connector = Connector::start(&connect_args, &[]).await;
    connector.handshake().await;
    assert_gc_result(&connector.gc_content(2, READ_TIMEOUT).await);
    let sessionless = connector.stderr().contains("speaks MCP 2026-07-28");
    assert_eq!(
        sessionless,
        scheme == "http" && extra.is_empty(),
        "{}",
        connector.stderr()
    );

    server.child.kill().await.expect("kill the server");
    // A request written to a connection that then dies may have run, so the connector answers
    // it with an error instead of resending it. Let the connector see the connection go first:
    // WebSocket logs it; HTTP keep-alive connections are dropped from reqwest's pool as soon
    // as the FIN arrives, which a second covers with a wide margin.
    if scheme == "ws" {
        connector
            .wait_for_log("connection lost", READ_TIMEOUT)
            .await;
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Sent while nothing listens: the connector retries with backoff until the new server is up.
    connector
        .send(&request(
            3,
            "tools/call",
            json!({ "name": "gc_content", "arguments": { "seq": "GGCCAT" } }),
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = ServerProcess::start("bioseq", &args).await;
    assert_eq!(
        if scheme == "http" {
            server.http()
        } else {
            server.ws()
        },
        url,
        "same port"
    );
    // Within the connector's 30 s retry window, with room for its 5 s backoff cap.
    assert_gc_result(&connector.response(3, Duration::from_secs(40)).await);
    assert_gc_result(&connector.gc_content(4, READ_TIMEOUT).await);
    assert_eq!(
        connector.stderr().contains("re-initialized"),
        !sessionless,
        "the connector logs a new session (and has none to renew without sessions); stderr:\n{}",
        connector.stderr()
    );
    let status = connector.finish().await;
    assert!(status.success(), "exit status {status}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn waits_out_a_servers_rate_limit() {
    // Two requests a second: the handshake and eight calls in a row outrun it, so the server
    // answers some with 429 and Retry-After, which the connector waits out (the server did not
    // take those requests, so sending them again runs nothing twice).
    let server =
        ServerProcess::start("bioseq", &["--http", "0", "--ws", "0", "--rate-limit", "2"]).await;
    let mut connector = Connector::start(&[server.http()], &[]).await;
    assert!(connector.handshake().await.get("result").is_some());
    for id in 2..10 {
        assert_gc_result(&connector.gc_content(id, READ_TIMEOUT).await);
    }
    assert!(
        connector.stderr().contains("asks to retry later"),
        "the limit was never hit: {}",
        connector.stderr()
    );
    assert!(connector.finish().await.success());

    // Over WebSocket the upgrade is what is limited: a burst of connectors, each waits its turn.
    let mut connectors = Vec::new();
    for _ in 0..4 {
        connectors.push(Connector::start(&[server.ws()], &[]).await);
    }
    for connector in &mut connectors {
        let init = connector.handshake().await;
        assert!(init.get("result").is_some(), "{init}");
        assert_gc_result(&connector.gc_content(2, READ_TIMEOUT).await);
    }
    for connector in connectors {
        assert!(connector.finish().await.success());
    }
}

#[tokio::test]
async fn an_unreachable_server_is_reported_after_one_retry_window() {
    // Nothing listens there. The connector first asks `server/discover` (is it a 2026-07-28
    // server?); once that has retried its window, the host's `initialize` is answered with the
    // reason, not sent for a second window of its own.
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let mut connector = Connector::start(&[url.as_str()], &[]).await;
    connector.send(&initialize(1, json!({}))).await;
    let refused = connector.response(1, Duration::from_secs(50)).await;
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cannot reach") && message.contains(&url),
        "{refused}"
    );
    let stderr = connector.stderr();
    assert_eq!(
        stderr.matches("server unreachable; retrying").count(),
        1,
        "one retry window, not one per request:\n{stderr}"
    );
    assert!(connector.finish().await.success());
}
