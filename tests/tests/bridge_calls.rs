//! `mcp-expose bridge`, per-session children that answer badly or not at all (issue 15, items
//! 7 and 8): every POST ends with an answer or an error in bounded time, a session its client
//! left is reaped, and HTTP bodies follow `--max-message-size`. The child is
//! `tests/python/hostile_child.py`, driven by reqwest on loopback.

use std::time::Duration;

use mcp_expose_tests::{ServerProcess, gone_within, initialize, initialized};
use serde_json::{Value, json};

fn hostile() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python/hostile_child.py")
        .display()
        .to_string()
}

/// A per-session bridge over HTTP with `options`, of the hostile child with `child_args`.
async fn bridge(options: &[&str], child_args: &[&str]) -> ServerProcess {
    let script = hostile();
    let mut args = vec!["bridge", "--http", "0"];
    args.extend_from_slice(options);
    args.extend(["--", "python3", &script]);
    args.extend_from_slice(child_args);
    ServerProcess::start("mcp-expose", &args).await
}

/// A streamable HTTP client of one bridge session.
struct Http {
    client: reqwest::Client,
    url: String,
    session: Option<String>,
}

impl Http {
    fn new(server: &ServerProcess) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: server.http().to_owned(),
            session: None,
        }
    }

    /// POSTs `body`; the response (status, body text), or a panic naming `what` when it does
    /// not come whole within `limit`.
    async fn post(&mut self, body: String, limit: Duration, what: &str) -> (u16, String) {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        let exchange = async {
            let response = request.send().await.expect("POST");
            if let Some(id) = response.headers().get("mcp-session-id") {
                self.session = Some(id.to_str().expect("session id").to_owned());
            }
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(answer) => answer,
            Err(_) => panic!("{what}: no complete answer within {limit:?} (the POST hangs)"),
        }
    }

    /// Opens the session: `initialize` answered, then `notifications/initialized`.
    async fn open(server: &ServerProcess) -> Self {
        let mut http = Self::new(server);
        let (status, body) = http
            .post(
                initialize(1, json!({})),
                Duration::from_secs(20),
                "initialize",
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"hostile\""), "{body}");
        http.post(initialized(), Duration::from_secs(10), "initialized")
            .await;
        http
    }
}

/// A `tools/call` with the raw JSON `id`.
fn raw_call(id: &str, arguments: Value) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"x","arguments":{arguments}}}}}"#
    )
}

#[tokio::test]
async fn answers_whose_id_the_child_reserialised_reach_their_call() {
    let server = bridge(&[], &[]).await;
    let mut http = Http::open(&server).await;
    // (the client's id, the same id as the child writes it back)
    let cases = [
        (r#""é""#, r#""\u00e9""#),
        (r#""/x""#, r#""\/x""#),
        ("7", "7.0"),
        ("100", "1e2"),
        ("0", "-0"),
        ("123456789012345678901234567890", "1.2345678901234568e+29"),
        // A child that could not read the id: the one call in flight is the one it answers.
        ("5", "null"),
    ];
    for (id, reply) in cases {
        let arguments = json!({ "reply_id": reply });
        let what = format!("a call with id {id}, answered with id {reply}");
        let (status, body) = http
            .post(raw_call(id, arguments), Duration::from_secs(10), &what)
            .await;
        assert_eq!(status, 200, "{what}: {body}");
        assert!(
            body.contains(&format!(r#""id":{id},"#)) && body.contains(r#""text": "ok""#),
            "{what}: the answer carries the client's own id: {body}"
        );
    }
}

#[tokio::test]
async fn calls_and_initialize_the_child_never_answers_time_out_with_an_error() {
    let server = bridge(&["--request-timeout", "2"], &["--no-init"]).await;
    let mut http = Http::new(&server);
    let (status, body) = http
        .post(
            initialize(1, json!({})),
            Duration::from_secs(10),
            "an initialize the child never answers",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("did not answer within 2 s")),
        "{answer}"
    );
    // An answer to an id nobody asked for is no answer: the call still ends.
    let (_, body) = http
        .post(
            raw_call("2", json!({ "reply_id": "\"nobody\"" })),
            Duration::from_secs(10),
            "a call answered with another id",
        )
        .await;
    let answer: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
}

#[tokio::test]
async fn a_session_whose_client_left_mid_call_is_reaped() {
    let pidfile = std::env::temp_dir().join(format!("mcp-expose-pinned-{}", std::process::id()));
    let _ = std::fs::remove_file(&pidfile);
    let env = format!("HOSTILE_PIDFILE={}", pidfile.display());
    // No --request-timeout: the idle timeout alone must end the session.
    let server = bridge(&["--idle-timeout", "2", "--env", &env], &["--no-init"]).await;
    let client = reqwest::Client::new();
    let left = client
        .post(server.http())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize(1, json!({})))
        .timeout(Duration::from_secs(1))
        .send()
        .await;
    assert!(left.is_err(), "the child never answers initialize");
    let mut pid = None;
    for _ in 0..100 {
        pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if pid.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = pid.expect("the child wrote its pid within 10 s");
    assert!(
        gone_within(pid, Duration::from_secs(30)).await,
        "the child of a session its client left (--idle-timeout 2) is alive 30 s later"
    );
    let _ = std::fs::remove_file(&pidfile);
}

#[tokio::test]
async fn http_bodies_follow_max_message_size() {
    let server = bridge(&["--max-message-size", "4194304"], &[]).await;
    let mut http = Http::open(&server).await;
    // Over axum's default of 2 MiB, under the limit: served.
    let pad = "p".repeat(3 << 20);
    let (status, body) = http
        .post(
            raw_call("2", json!({ "pad": pad })),
            Duration::from_secs(20),
            "a 3 MiB call",
        )
        .await;
    assert_eq!(status, 200, "a 3 MiB body under a 4 MiB limit: {body}");
    assert!(body.contains(r#""text": "ok""#), "{body}");
    // Over the limit: 413, with a JSON body.
    let pad = "p".repeat(5 << 20);
    let (status, body) = http
        .post(
            raw_call("3", json!({ "pad": pad })),
            Duration::from_secs(20),
            "a 5 MiB call",
        )
        .await;
    assert_eq!(status, 413, "a 5 MiB body over a 4 MiB limit: {body}");
    let error: Value = serde_json::from_str(&body).expect("a JSON body");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("4194304")),
        "{error}"
    );
}

#[tokio::test]
async fn a_shared_childs_call_that_is_never_answered_times_out_with_an_error() {
    let server = bridge(&["--child", "shared", "--request-timeout", "2"], &[]).await;
    let mut http = Http::open(&server).await;
    // Answered with an id nobody asked for: without a timeout the POST stayed open for good.
    let (_, body) = http
        .post(
            raw_call("7", json!({ "reply_id": "\"nobody\"" })),
            Duration::from_secs(10),
            "a shared-child call answered with another id",
        )
        .await;
    let answer: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(answer["id"], 7, "{answer}");
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    // The session goes on.
    let (status, _) = http
        .post(
            raw_call("8", json!({})),
            Duration::from_secs(10),
            "a plain call",
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_shared_childs_initialize_that_is_never_answered_times_out_with_an_error() {
    let server = bridge(
        &["--child", "shared", "--request-timeout", "2"],
        &["--no-init"],
    )
    .await;
    let mut http = Http::new(&server);
    let (status, body) = http
        .post(
            initialize(1, json!({})),
            Duration::from_secs(10),
            "an initialize the shared child never answers",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("a JSON body");
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
}
