//! MCP 2026-07-28 clients of `mcp-expose bridge`: sessionless requests (no `initialize`, the
//! revision in a header and in each request's `_meta`) reach a 2025 Python child the bridge
//! initialized itself; 2025 sessions on the same bridge are unchanged.

use std::time::Duration;

use mcp_expose_tests::{
    ServerProcess, http_messages, initialize, initialized, kill, python_server, request,
    response_messages, session_id, tool_call,
};
use serde_json::{Value, json};

const V2026: &str = "2026-07-28";

async fn bridge(child: &str) -> ServerProcess {
    let child = python_server(child);
    let args = ["bridge", "--http", "0", "--", "python3", child.as_str()];
    ServerProcess::start("mcp-expose", &args).await
}

/// `params` with the `_meta` every 2026-07-28 request carries (declaring no capabilities,
/// unless `params` has `capabilities`, which become the declared ones).
fn with_meta(mut params: Value) -> Value {
    let capabilities = params
        .as_object_mut()
        .and_then(|p| p.remove("capabilities"))
        .unwrap_or(json!({}));
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V2026,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": { "name": "bridge-revision-tests", "version": "0" },
    });
    params
}

/// POSTs a sessionless 2026-07-28 request; its HTTP status and messages, bounded to 20 s.
async fn post26(server: &ServerProcess, id: Value, method: &str, params: Value) -> (u16, Value) {
    let target = params["name"]
        .as_str()
        .or(params["uri"].as_str())
        .map(str::to_owned);
    let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": with_meta(params) });
    let response = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", method);
    let response = match target {
        Some(name) => response.header("mcp-name", name),
        None => response,
    };
    let response = response
        .timeout(Duration::from_secs(20))
        .body(body.to_string())
        .send()
        .await
        .expect("an answer within 20 s");
    let status = response.status().as_u16();
    let mut messages = response_messages(response).await;
    assert_eq!(messages.len(), 1, "{method}: {messages:?}");
    (status, messages.remove(0))
}

#[tokio::test]
async fn sessionless_2026_requests_reach_a_2025_child() {
    let server = bridge("child_server.py").await;

    let (status, discover) = post26(&server, json!(1), "server/discover", json!({})).await;
    assert_eq!(status, 200, "{discover}");
    assert_eq!(discover["id"], 1, "{discover}");
    let result = &discover["result"];
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "py-child",
        "{discover}"
    );
    assert!(result["capabilities"]["tools"].is_object(), "{discover}");
    assert!(
        result["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.contains(&json!(V2026))),
        "{discover}"
    );

    let (status, list) = post26(&server, json!("list-1"), "tools/list", json!({})).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["id"], "list-1", "{list}");
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{list}");
    assert_eq!(list["result"]["resultType"], "complete", "{list}");

    // Concurrent calls each get their own answer under their own id.
    let calls = (0..4).map(|i| {
        let params = json!({ "name": "echo", "arguments": { "text": format!("hi {i}") } });
        post26(&server, json!(100 + i), "tools/call", params)
    });
    for (i, (status, answer)) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["id"], 100 + i, "{answer}");
        assert_eq!(
            answer["result"]["content"][0]["text"],
            format!("hi {i}"),
            "{answer}"
        );
    }

    let (status, read) = post26(
        &server,
        json!(7),
        "resources/read",
        json!({ "uri": "py://greeting" }),
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["id"], 7, "{read}");
    assert_eq!(read["result"]["contents"][0]["text"], "hello from python");

    // The child asks the client's model, which this client did not declare: the call is
    // refused with -32021 naming the capability (and the child's request refused to it).
    let params = json!({ "name": "ask", "arguments": { "question": "?" } });
    let (status, asked) = post26(&server, json!(8), "tools/call", params).await;
    assert_eq!(status, 400, "{asked}");
    assert_eq!(asked["id"], 8, "{asked}");
    assert_eq!(asked["error"]["code"], -32021, "{asked}");
    assert!(
        asked["error"]["data"]["requiredCapabilities"]["sampling"].is_object(),
        "{asked}"
    );
}

#[tokio::test]
async fn a_call_s_progress_comes_before_its_answer_under_the_client_s_token() {
    let server = bridge("child_server.py").await;
    let mut params = with_meta(json!({ "name": "steps", "arguments": { "count": 3 } }));
    params["_meta"]["progressToken"] = json!("mine");
    let body = json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params });
    let response = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "steps")
        .timeout(Duration::from_secs(20))
        .body(body.to_string())
        .send()
        .await
        .expect("an answer within 20 s");
    let messages = response_messages(response).await;
    let (answer, progress) = messages.split_last().expect("messages");
    assert_eq!(answer["id"], 5, "{messages:?}");
    assert_eq!(
        answer["result"]["content"][0]["text"], "3 steps",
        "{messages:?}"
    );
    assert_eq!(progress.len(), 3, "{messages:?}");
    for note in progress {
        assert_eq!(note["method"], "notifications/progress", "{messages:?}");
        assert_eq!(note["params"]["progressToken"], "mine", "{messages:?}");
    }
}

#[tokio::test]
async fn a_killed_stateless_child_is_restarted() {
    let server = bridge("child_server.py").await;
    let pid_of = |answer: &Value| answer["result"]["structuredContent"]["result"].as_u64();
    let pid_call = || json!({ "name": "pid", "arguments": {} });
    let (_, answer) = post26(&server, json!(1), "tools/call", pid_call()).await;
    let first = pid_of(&answer).expect("a pid") as u32;
    kill("-KILL", first);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, answer) = post26(&server, json!(2), "tools/call", pid_call()).await;
        assert_eq!(answer["id"], 2, "{answer}");
        match pid_of(&answer) {
            Some(pid) if pid as u32 != first => break,
            _ => {}
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not restarted: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn removed_methods_are_404_method_not_found_with_the_id() {
    let server = bridge("child_server.py").await;
    let removed = [
        "initialize",
        "ping",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
    ];
    for (id, method) in (40..).zip(removed) {
        let (status, answer) = post26(&server, json!(id), method, json!({})).await;
        assert_eq!(status, 404, "{method}: {answer}");
        assert_eq!(answer["id"], id, "{method}: {answer}");
        assert_eq!(answer["error"]["code"], -32601, "{method}: {answer}");
    }
}

#[tokio::test]
async fn a_request_without_its_meta_or_with_a_wrong_header_is_400_with_the_id() {
    let server = bridge("child_server.py").await;
    let response = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .timeout(Duration::from_secs(20))
        .body(request(3, "tools/list", json!({})))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 400);
    let messages = response_messages(response).await;
    assert_eq!(messages[0]["id"], 3, "{messages:?}");
    assert_eq!(messages[0]["error"]["code"], -32602, "{messages:?}");

    // An Mcp-Method header that is not the body's method: 400, -32020.
    let body = json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": with_meta(json!({})) });
    let response = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", "prompts/list")
        .timeout(Duration::from_secs(20))
        .body(body.to_string())
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 400);
    let messages = response_messages(response).await;
    assert_eq!(messages[0]["id"], 4, "{messages:?}");
    assert_eq!(messages[0]["error"]["code"], -32020, "{messages:?}");
}

#[tokio::test]
async fn a_2025_session_on_the_same_bridge_still_works() {
    let server = bridge("child_server.py").await;
    let (status, _) = post26(&server, json!(1), "tools/list", json!({})).await;
    assert_eq!(status, 200);

    let client = reqwest::Client::new();
    let post = |body: String, session: Option<String>| {
        let mut post = client
            .post(server.http())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .timeout(Duration::from_secs(20));
        if let Some(session) = session {
            post = post.header("mcp-session-id", session);
        }
        post.body(body).send()
    };
    let response = post(initialize(0, json!({})), None)
        .await
        .expect("initialize");
    let session = session_id(&response);
    let init = response_messages(response).await;
    assert_eq!(
        init[0]["result"]["serverInfo"]["name"], "py-child",
        "{init:?}"
    );
    let response = post(initialized(), Some(session.clone()))
        .await
        .expect("initialized");
    assert_eq!(response.status(), 202);
    let response = post(
        tool_call(1, "echo", json!({ "text": "old" })),
        Some(session.clone()),
    )
    .await
    .expect("call");
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_owned();
    let messages = http_messages(&kind, &response.text().await.expect("body"));
    assert_eq!(messages[0]["id"], 1, "{messages:?}");
    assert_eq!(messages[0]["result"]["content"][0]["text"], "old");

    // Without a session and without the 2026 revision, a request is still refused.
    let response = post(request(2, "tools/list", json!({})), None)
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
}

/// A bridge in front of conformance-server, which speaks MCP 2026-07-28 itself.
async fn bridge_to_2026_child() -> ServerProcess {
    let child = mcp_expose_tests::bin("conformance-server");
    let child = child.display().to_string();
    let args = ["bridge", "--http", "0", "--", child.as_str()];
    ServerProcess::start("mcp-expose", &args).await
}

#[tokio::test]
async fn a_child_that_speaks_2026_gets_requests_as_sent_and_answers_them_itself() {
    let server = bridge_to_2026_child().await;
    // Its own server/discover, not one made up from a 2025 initialize.
    let (status, discover) = post26(&server, json!(1), "server/discover", json!({})).await;
    assert_eq!(status, 200, "{discover}");
    let info = &discover["result"]["_meta"]["io.modelcontextprotocol/serverInfo"];
    assert_eq!(info["name"], "conformance-server", "{discover}");
    let tasks = &discover["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"];
    assert!(tasks.is_object(), "{discover}");

    // Without the capability the call needs: the child's -32021, as 400 with the id.
    let params = json!({ "name": "test_input_required_result_elicitation", "arguments": {} });
    let (status, refused) = post26(&server, json!(2), "tools/call", params.clone()).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], -32021, "{refused}");
    assert_eq!(refused["id"], 2, "{refused}");

    // With it: an input-required result, keyed as the child keys it, then the retry's result.
    let mut params = params;
    params["capabilities"] = json!({ "elicitation": {} });
    let (status, first) = post26(&server, json!(3), "tools/call", params.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    assert!(
        first["result"]["inputRequests"]["user_name"].is_object(),
        "{first}"
    );
    let mut retry = params;
    retry["inputResponses"] =
        json!({ "user_name": { "action": "accept", "content": { "name": "Ada" } } });
    retry["requestState"] = first["result"]["requestState"].clone();
    let (status, done) = post26(&server, json!(4), "tools/call", retry).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["id"], 4, "{done}");
    let text = done["result"]["content"][0]["text"].as_str().unwrap_or("");
    assert!(text.contains("Ada"), "{done}");

    // A header-mirrored parameter is checked at the bridge, which the child cannot do.
    let params = json!({ "name": "test_header_param", "arguments": { "region": "eu" } });
    let (status, refused) = post26(&server, json!(5), "tools/call", params).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], -32020, "{refused}");
    assert_eq!(refused["id"], 5, "{refused}");
}

/// `subscriptions/listen` through a shared bridge: acknowledged under the client's id; and
/// once its client leaves, it no longer counts as a call in flight, so a 2025 session's
/// sampling request can be attributed again (before, the abandoned listen lingered and every
/// later sampling request of the shared child was refused).
#[tokio::test]
async fn a_listen_is_tagged_for_its_client_and_ends_with_it() {
    let child = mcp_expose_tests::bin("conformance-server");
    let child = child.display().to_string();
    let args = [
        "bridge",
        "--child",
        "shared",
        "--http",
        "0",
        "--ws",
        "0",
        "--",
        child.as_str(),
    ];
    let server = ServerProcess::start("mcp-expose", &args).await;
    let params = with_meta(json!({ "notifications": { "toolsListChanged": true } }));
    let body = json!({ "jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen", "params": params });
    let mut listen = reqwest::Client::new()
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", V2026)
        .header("mcp-method", "subscriptions/listen")
        .body(body.to_string())
        .send()
        .await
        .expect("a listen stream");
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("notifications/subscriptions/acknowledged") {
        let chunk = tokio::time::timeout_at(deadline, listen.chunk())
            .await
            .expect("the acknowledgement within 10 s")
            .expect("the stream");
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("more of the stream"),
        ));
    }
    assert!(
        text.contains("\"io.modelcontextprotocol/subscriptionId\":\"listen-1\""),
        "{text}"
    );
    drop(listen);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A 2025 session's call that samples: its request reaches the session.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws())
        .await
        .expect("websocket");
    mcp_expose_tests::send(&mut socket, initialize(1, json!({ "sampling": {} }))).await;
    assert!(mcp_expose_tests::next_json(&mut socket).await["result"].is_object());
    mcp_expose_tests::send(&mut socket, initialized()).await;
    let args = json!({ "prompt": "hi" });
    mcp_expose_tests::send(&mut socket, tool_call(2, "test_sampling", args)).await;
    let asked = tokio::time::timeout(
        Duration::from_secs(10),
        mcp_expose_tests::next_json(&mut socket),
    )
    .await
    .expect("a message within 10 s");
    assert_eq!(asked["method"], "sampling/createMessage", "{asked}");
}
