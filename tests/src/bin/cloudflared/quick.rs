//! The quick-tunnel API call and its banner.

use std::time::Duration;

use tokio::time::sleep;

use crate::log::{ERR, INF, env_ms, fail, rand_u64};

pub(crate) const DISCLAIMER: &str = "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/get-started";
pub(crate) const CREATED: &str =
    "Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):";
pub(crate) const OFFLINE: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": dial tcp: lookup api.trycloudflare.com on 127.0.0.53:53: connect: network is unreachable";
pub(crate) const API_TIMEOUT: &str = "failed to request quick Tunnel: Post \"https://api.trycloudflare.com/tunnel\": net/http: timeout awaiting response headers (Client.Timeout exceeded while awaiting headers)";
pub(crate) const NOT_JSON: &str = "invalid character 'e' looking for beginning of value";
pub(crate) const WORDS: &str = "seasonal reviewer mixer latest fluffy bunny granted silver harbor velvet \
    quantum meadow pencil orbit canyon lemon tribune atlas cedar pixel summit garden rocket timber \
    violin basin copper delta ember falcon glacier horizon island jungle kernel lagoon marble";

/// The quick-tunnel API call and the banner; returns the hostname or exits as the mode says.
pub(crate) async fn request_quick_tunnel(mode: &str) -> String {
    log!(INF, DISCLAIMER);
    log!(INF, "Requesting new quick Tunnel on trycloudflare.com...");
    match mode {
        "offline" => {
            sleep(Duration::from_millis(80)).await;
            fail(OFFLINE, 1)
        }
        "rate-limited" => {
            log!(ERR, "Error unmarshaling QuickTunnel response: error code: 1015",
                "error" => NOT_JSON, "status_code" => "429 Too Many Requests");
            fail(&format!("failed to unmarshal quick Tunnel: {NOT_JSON}"), 1)
        }
        "api-hang" => {
            // No signal handler is installed yet: like the real one, a signal kills it silently.
            sleep(env_ms("FAKE_CLOUDFLARED_HANG_MS", 15_000)).await;
            fail(API_TIMEOUT, 1)
        }
        _ => sleep(Duration::from_millis(30)).await,
    }
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let pick = |_| words[(rand_u64() % words.len() as u64) as usize];
    let hostname = (0..4).map(pick).collect::<Vec<_>>().join("-") + ".trycloudflare.com";
    // cloudflared's AsciiBox: border, one padded line per text, border.
    let url = format!("https://{hostname}");
    let width = CREATED.len().max(url.len());
    let border = format!("+{}+", "-".repeat(width + 4));
    log!(INF, border);
    log!(INF, "|  {CREATED:<width$}  |");
    log!(INF, "|  {url:<width$}  |");
    log!(INF, border);
    hostname
}
