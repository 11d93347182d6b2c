//! The quick-tunnel API call and its banner.

use std::time::Duration;

use tokio::time::sleep;

use crate::{
    cli::VERSION,
    log::{ERR, INF, ascii_box, env_ms, fail, rand_u64},
};

pub(crate) const DISCLAIMER: &str = "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/get-started";
pub(crate) const CREATED: &str =
    "Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):";
pub(crate) const DEFAULT_SERVICE: &str = "https://api.trycloudflare.com";
pub(crate) const API_TIMEOUT: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": net/http: timeout awaiting response headers (Client.Timeout exceeded while awaiting headers)";
pub(crate) const NOT_JSON: &str = "invalid character 'e' looking for beginning of value";
pub(crate) const WORDS: &str = "seasonal reviewer mixer latest fluffy bunny granted silver harbor velvet \
    quantum meadow pencil orbit canyon lemon tribune atlas cedar pixel summit garden rocket timber \
    violin basin copper delta ember falcon glacier horizon island jungle kernel lagoon marble";

/// The quick-tunnel API call and the banner; returns the hostname or exits as the mode says.
/// `--quick-service URL` is really called (`POST URL/tunnel`); the default API is only pretended.
pub(crate) async fn request_quick_tunnel(mode: &str, service: Option<String>) -> String {
    log!(INF, DISCLAIMER);
    log!(INF, "Requesting new quick Tunnel on trycloudflare.com...");
    let api = service
        .clone()
        .unwrap_or_else(|| DEFAULT_SERVICE.to_owned());
    let post = format!("{}/tunnel", api.trim_end_matches('/'));
    let hostname = match (mode, service) {
        ("offline" | "no-dns", _) => {
            sleep(Duration::from_millis(200)).await;
            let host = api.split("://").nth(1).unwrap_or(&api);
            let host = host.split(['/', ':']).next().unwrap_or(host);
            let why = format!(
                "dial tcp: lookup {host} on {}: connect: network is unreachable",
                resolver()
            );
            fail(
                &format!("failed to request quick Tunnel: Post \"{post}\": {why}"),
                1,
            )
        }
        ("rate-limited", _) => {
            log!(ERR, "Error unmarshaling QuickTunnel response: error code: 1015",
                "error" => NOT_JSON, "status_code" => "429 Too Many Requests");
            fail(&format!("failed to unmarshal quick Tunnel: {NOT_JSON}"), 1)
        }
        ("api-hang", _) => {
            // No signal handler is installed yet: like the real one, a signal kills it silently.
            sleep(env_ms("FAKE_CLOUDFLARED_HANG_MS", 15_000)).await;
            fail(API_TIMEOUT, 1)
        }
        (_, Some(_)) => call_service(&post).await,
        (_, None) => {
            sleep(Duration::from_millis(30)).await;
            let words: Vec<&str> = WORDS.split_whitespace().collect();
            let pick = |_| words[(rand_u64() % words.len() as u64) as usize];
            (0..4).map(pick).collect::<Vec<_>>().join("-") + ".trycloudflare.com"
        }
    };
    let url = format!("https://{hostname}");
    ascii_box(&[CREATED, &url]);
    hostname
}

/// `POST URL/tunnel`, expecting `{"success":true,"result":{"hostname":...}}`.
async fn call_service(post: &str) -> String {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap_or_else(|e| fail(&format!("failed to request quick Tunnel: {e}"), 1));
    let response = client
        .post(post)
        .header("content-type", "application/json")
        .header("user-agent", format!("cloudflared/{VERSION}"))
        .send()
        .await;
    let (status, body) = match response {
        Ok(r) => (r.status(), r.text().await.unwrap_or_default()),
        Err(e) => {
            // Go's wording for a refused dial; the others as reqwest says them.
            let authority = post.split("://").nth(1).and_then(|r| r.split('/').next());
            let why = match authority {
                Some(a) if e.is_connect() => format!("dial tcp {a}: connect: connection refused"),
                _ => e.to_string(),
            };
            fail(
                &format!("failed to request quick Tunnel: Post \"{post}\": {why}"),
                1,
            )
        }
    };
    // A rate-limited API answers 429 with `error code: 1015`, which is not JSON.
    let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| {
        // Go's decoder's wording.
        let e = match body.trim_start().chars().next() {
            Some(c) => format!("invalid character '{c}' looking for beginning of value"),
            None => "EOF".to_owned(),
        };
        let reason = status.canonical_reason().unwrap_or("");
        let status = format!("{} {reason}", status.as_u16());
        let body = body.trim();
        log!(ERR, "Error unmarshaling QuickTunnel response: {body}", "error" => e,
            "status_code" => status.trim());
        fail(&format!("failed to unmarshal quick Tunnel: {e}"), 1)
    });
    match value["result"]["hostname"].as_str() {
        Some(h) if value["success"] == true && !h.is_empty() => h.to_owned(),
        _ => fail(&format!("failed to unmarshal quick Tunnel: {body}"), 1),
    }
}

/// The machine's resolver as Go's DNS errors name it: the first `nameserver` of resolv.conf.
pub(crate) fn resolver() -> String {
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let first = conf
        .lines()
        .find_map(|l| l.trim().strip_prefix("nameserver"));
    match first.map(str::trim) {
        Some(ip) if ip.contains(':') => format!("[{ip}]:53"),
        Some(ip) if !ip.is_empty() => format!("{ip}:53"),
        _ => "127.0.0.53:53".to_owned(),
    }
}
