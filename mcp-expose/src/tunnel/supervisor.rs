//! The supervision loop: start cloudflared, learn its URL and metrics port, wait for `/ready`,
//! watch it, and restart it with backoff when it exits, unless restarting cannot help.

use std::{
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use tokio::{process::Child, sync::mpsc, sync::watch};
use tokio_util::sync::CancellationToken;

use super::{
    TunnelConfig, TunnelKind, TunnelProtocol, TunnelState, TunnelStatus, metrics, output::Event,
    process,
};
use crate::backoff::{self, Backoff};

pub(crate) const INSTALL_HINT: &str = "install cloudflared (https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/; \
     macOS: `brew install cloudflared`; Debian/Ubuntu: Cloudflare's apt repository or the .deb from its GitHub releases) \
     or point --cloudflared at it";

/// How one run of cloudflared ended.
enum Outcome {
    /// We stopped it on request.
    Stopped,
    /// Restarting cannot help.
    Fatal(String),
    /// It exited or never became ready; start it again after a delay.
    Retry {
        reason: String,
        rate_limited: bool,
        /// cloudflared could not reach Cloudflare at all (offline, no DNS): why.
        unreachable: Option<String>,
        ready_for: Option<Duration>,
    },
}

/// What one run's log said about how it is going.
#[derive(Default)]
struct Seen {
    rate_limited: bool,
    config_error: Option<String>,
    unreachable: Option<String>,
    edge_unreachable: bool,
}

impl Seen {
    /// Records an event about failure; the others are the caller's.
    fn note(&mut self, event: &Event) {
        match event {
            Event::RateLimited => self.rate_limited = true,
            Event::ConfigError(message) => self.config_error = Some(message.clone()),
            Event::Unreachable(reason) => self.unreachable = Some(reason.clone()),
            _ => {}
        }
    }
}

pub(crate) struct Supervisor {
    config: TunnelConfig,
    local_url: String,
    status: watch::Sender<TunnelStatus>,
    stop: CancellationToken,
    config_file: PathBuf,
}

impl Supervisor {
    pub(crate) fn new(
        config: TunnelConfig,
        local_url: String,
        status: watch::Sender<TunnelStatus>,
        stop: CancellationToken,
    ) -> Self {
        let config_file = std::env::temp_dir().join(format!(
            "mcp-expose-cloudflared-{}.json",
            std::process::id()
        ));
        Self {
            config,
            local_url,
            status,
            stop,
            config_file,
        }
    }

    fn update(&self, f: impl FnOnce(&mut TunnelStatus)) {
        self.status.send_modify(f);
    }

    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["tunnel", "--no-autoupdate", "--metrics", "127.0.0.1:0"]
            .map(String::from)
            .into();
        if self.config.protocol != TunnelProtocol::Auto {
            let protocol = if self.config.protocol == TunnelProtocol::Quic {
                "quic"
            } else {
                "http2"
            };
            args.extend(["--protocol".to_owned(), protocol.to_owned()]);
        }
        // Our own (empty) config file, so that ~/.cloudflared/config.yml is never read: its
        // ingress rules would silently override --url, its `protocol:` or `loglevel:` ours.
        args.extend([
            "--config".to_owned(),
            self.config_file.display().to_string(),
        ]);
        match &self.config.kind {
            TunnelKind::Quick => args.extend(["--url".to_owned(), self.local_url.clone()]),
            TunnelKind::Named { .. } => args.push("run".to_owned()),
        }
        args
    }

    fn env(&self) -> Vec<(String, String)> {
        match &self.config.kind {
            TunnelKind::Quick => Vec::new(),
            TunnelKind::Named { token, .. } => vec![("TUNNEL_TOKEN".to_owned(), token.clone())],
        }
    }

    pub(crate) async fn run(self) {
        if let Err(e) = std::fs::write(&self.config_file, "{}\n") {
            tracing::warn!(error = %e, "cannot write the isolating cloudflared config");
        }
        self.read_version().await;
        let mut restarts =
            Backoff::new(self.config.backoff_initial, self.config.backoff_max).with_jitter();
        loop {
            let outcome = self.run_once().await;
            let (delay, reason) = match outcome {
                Outcome::Stopped => break,
                Outcome::Fatal(message) => {
                    // Whoever follows the status says it to the user (serve announces it once).
                    tracing::debug!(target: "mcp_expose::tunnel", "tunnel failed: {message}");
                    self.update(|s| {
                        s.state = TunnelState::Failed;
                        s.last_error = Some(message);
                        s.pid = None;
                    });
                    break;
                }
                Outcome::Retry {
                    reason,
                    rate_limited,
                    unreachable,
                    ready_for,
                } => {
                    if ready_for.is_some_and(|d| d >= self.config.stable_after) {
                        restarts.reset();
                    }
                    // A rate-limited run counts as a failure too, but waits its own delay.
                    let step = restarts.next_delay();
                    let delay = if rate_limited {
                        backoff::jitter(self.config.rate_limited_backoff)
                    } else {
                        step
                    };
                    match unreachable {
                        Some(why) => {
                            let reason = format!("cannot reach Cloudflare: {why}");
                            tracing::warn!(target: "mcp_expose::tunnel", "{reason}; retrying in {:.1} s", delay.as_secs_f64());
                            (delay, reason)
                        }
                        None => {
                            tracing::warn!(target: "mcp_expose::tunnel", "cloudflared {reason}; restarting in {:.1} s", delay.as_secs_f64());
                            (delay, reason)
                        }
                    }
                }
            };
            self.update(|s| {
                s.state = TunnelState::Restarting;
                s.last_error = Some(reason);
                s.pid = None;
                s.metrics_port = None;
                s.ready_since = None;
            });
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.stop.cancelled() => break,
            }
            self.update(|s| s.restarts += 1);
        }
        if self.status.borrow().state != TunnelState::Failed {
            self.update(|s| {
                s.state = TunnelState::Stopped;
                s.pid = None;
                s.ready_since = None;
            });
        }
        let _ = std::fs::remove_file(&self.config_file);
    }

    async fn read_version(&self) {
        let output = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::process::Command::new(&self.config.cloudflared)
                .arg("--version")
                .kill_on_drop(true)
                .output(),
        )
        .await;
        if let Ok(Ok(output)) = output {
            let text = String::from_utf8_lossy(&output.stdout);
            let version = text
                .split_whitespace()
                .skip_while(|w| *w != "version")
                .nth(1)
                .map(str::to_owned);
            self.update(|s| s.cloudflared_version = version);
        }
    }

    async fn run_once(&self) -> Outcome {
        self.update(|s| s.state = TunnelState::Starting);
        let (mut child, mut events) =
            match process::spawn(&self.config.cloudflared, &self.args(), &self.env()) {
                Ok(spawned) => spawned,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Outcome::Fatal(format!(
                        "cloudflared not found (`{}`): {INSTALL_HINT}",
                        self.config.cloudflared.display()
                    ));
                }
                Err(e) => {
                    return Outcome::Fatal(format!(
                        "cannot start `{}`: {e}",
                        self.config.cloudflared.display()
                    ));
                }
            };
        let pid = child.id();
        tracing::info!(target: "mcp_expose::tunnel", pid, "started cloudflared for {}", self.local_url);
        self.update(|s| s.pid = pid);
        let outcome = self.watch(&mut child, &mut events).await;
        if !matches!(outcome, Outcome::Stopped) {
            // It may still run (never ready): stop and reap it before the next start.
            crate::process::stop(&mut child, self.config.stop_grace).await;
        }
        outcome
    }

    /// Follows one run until it ends; returns how.
    async fn watch(
        &self,
        child: &mut Child,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) -> Outcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.config.ready_timeout;
        let mut banner_host: Option<String> = None;
        let mut metrics_port: Option<u16> = None;
        let mut ready_at: Option<Instant> = None;
        let mut seen = Seen::default();
        let mut poll = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Hostname(host)) => banner_host = Some(host),
                    Some(Event::MetricsPort(port)) => {
                        metrics_port = Some(port);
                        self.update(|s| s.metrics_port = Some(port));
                    }
                    Some(Event::Registered) => poll.reset_immediately(),
                    // Said once per run: cloudflared re-dials every few seconds for ever.
                    Some(Event::EdgeUnreachable(why)) => if !seen.edge_unreachable {
                        seen.edge_unreachable = true;
                        tracing::warn!(target: "mcp_expose::tunnel", "cloudflared is running but cannot reach Cloudflare's edge: {why} (it keeps trying; if UDP is blocked, try --tunnel-protocol http2)");
                    },
                    Some(event) => seen.note(&event),
                    // Both pipes closed: the exit is next.
                    None => {
                        let status = child.wait().await;
                        return self.exited(status, seen, ready_at, started);
                    }
                },
                status = child.wait() => {
                    // Let the drain tasks deliver the last lines (the reason for the exit).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    while let Ok(event) = events.try_recv() {
                        seen.note(&event);
                    }
                    return self.exited(status, seen, ready_at, started);
                }
                () = self.stop.cancelled() => {
                    crate::process::stop(child, self.config.stop_grace).await;
                    return Outcome::Stopped;
                }
                _ = poll.tick(), if ready_at.is_none() && metrics_port.is_some() => {
                    let Some(port) = metrics_port else { continue };
                    if metrics::ready_connections(port).await.is_some()
                        && let Some(hostname) = self.public_hostname(port, banner_host.as_deref()).await
                    {
                        ready_at = Some(Instant::now());
                        self.update(|s| {
                            s.state = TunnelState::Ready;
                            s.url = Some(format!("https://{hostname}"));
                            s.hostname = Some(hostname);
                            s.ready_since = Some(SystemTime::now());
                            s.last_error = None;
                        });
                    }
                }
                () = tokio::time::sleep_until(deadline), if ready_at.is_none() => {
                    let message = format!("was not ready within {:?} (is the edge reachable? try --tunnel-protocol http2)", self.config.ready_timeout);
                    return Outcome::Retry { reason: message, rate_limited: false, unreachable: None, ready_for: None };
                }
            }
        }
    }

    /// The public hostname: the named tunnel's, or the quick tunnel's banner confirmed by
    /// `/quicktunnel` (which wins if they differ).
    async fn public_hostname(&self, port: u16, banner: Option<&str>) -> Option<String> {
        match &self.config.kind {
            TunnelKind::Named { hostname, .. } => Some(hostname.clone()),
            TunnelKind::Quick => {
                let reported = metrics::quick_tunnel_hostname(port)
                    .await
                    .filter(|h| !h.is_empty());
                match (banner, reported) {
                    (Some(banner), Some(reported)) if banner != reported => {
                        tracing::warn!(target: "mcp_expose::tunnel", %banner, %reported, "banner and /quicktunnel disagree; using /quicktunnel");
                        Some(reported)
                    }
                    (_, Some(reported)) => Some(reported),
                    (Some(banner), None) => Some(banner.to_owned()),
                    (None, None) => None,
                }
            }
        }
    }

    fn exited(
        &self,
        status: std::io::Result<std::process::ExitStatus>,
        seen: Seen,
        ready_at: Option<Instant>,
        started: Instant,
    ) -> Outcome {
        let code = status
            .as_ref()
            .ok()
            .and_then(std::process::ExitStatus::code);
        if let Some(message) = seen.config_error {
            return Outcome::Fatal(message);
        }
        if code == Some(255) {
            return Outcome::Fatal(
                "cloudflared exited with 255 (configuration error); see its log above".to_owned(),
            );
        }
        let how = match (&status, code) {
            (Ok(_), Some(code)) => format!("exited with code {code}"),
            (Ok(status), None) => format!("was killed ({status})"),
            (Err(e), _) => format!("could not be waited for ({e})"),
        };
        let reason = if seen.rate_limited {
            format!("{how}: quick-tunnel creation is rate limited (429/1015)")
        } else {
            how
        };
        tracing::debug!(target: "mcp_expose::tunnel", ran_for = ?started.elapsed(), "cloudflared ended");
        Outcome::Retry {
            reason,
            rate_limited: seen.rate_limited,
            unreachable: seen.unreachable,
            ready_for: ready_at.map(|t| t.elapsed()),
        }
    }
}
