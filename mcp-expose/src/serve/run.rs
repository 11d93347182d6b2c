//! Running the transports: listeners, routes, and one graceful shutdown for all of them.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router, middleware,
    routing::{any, get},
};
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use super::{
    Options,
    app::{App, AppState, ServedAt},
    routes::{health_route, info_route, metrics_route, not_found, ready_route, ws_route},
    tunneling::{Access, Start, Tunneling},
};
use crate::{
    error::{Error, ErrorKind, Result},
    handler::Handler,
    mount::Mount,
    security::{
        auth::{self, Auth},
        gate::Gate,
        policy::HostPolicy,
    },
    transport::{
        http::{self as http_transport, HttpSettings},
        sse::{self, SseSettings},
        stdio,
        ws::WsSettings,
    },
};

/// A started server: its bound addresses, and the way to stop it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> mcp_expose::Result<()> {
/// let running = mcp_expose::Server::new("demo", "1.0").http(0).ws(0).start().await?;
/// let addr = running.http_addr().expect("serves HTTP");
/// let health = format!("http://{addr}/health"); // http://127.0.0.1:PORT/health
/// # let _ = health;
/// running.shutdown().await; // drain calls, stop accepting, close sessions
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Running {
    http: Option<SocketAddr>,
    ws: Option<SocketAddr>,
    handler: Handler,
    /// Stops accepting connections.
    stop_accepting: CancellationToken,
    /// Ends every session.
    sessions: CancellationToken,
    /// Cancelled when the transports ended by themselves (stdin closed with stdio alone).
    finished: CancellationToken,
    tasks: JoinSet<()>,
    grace: Duration,
    /// Why the server must stop (a required tunnel failed).
    fatal: Arc<std::sync::Mutex<Option<Error>>>,
    tunnel: Tunneling,
}

impl Running {
    /// Where streamable HTTP is served (`http://ADDR/mcp`), if it is.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// Where WebSocket is served (`ws://ADDR/ws`), if it is.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws
    }

    /// Completes when the transports end by themselves (only with stdio alone, when stdin
    /// closes) or the server must stop (a required tunnel failed; see [`take_fatal`](Self::take_fatal)).
    pub async fn finished(&self) {
        self.finished.cancelled().await;
    }

    /// Tells every client subscribed to `uri` that the resource changed.
    pub async fn notify_resource_updated(&self, uri: &str) {
        self.handler.state().notify_resource_updated(uri).await;
    }

    /// The error that ended the server, if one did.
    pub fn take_fatal(&self) -> Option<Error> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The tunnel, when one was started.
    #[cfg(feature = "tunnel")]
    pub fn tunnel(&self) -> Option<crate::tunnel::TunnelHandle> {
        self.tunnel.handle()
    }

    /// Graceful shutdown: turn not-ready and refuse new requests with 503 (connections are
    /// still accepted, so new clients get that answer rather than a refused connection), let
    /// in-flight tool calls finish (up to the grace period), stop accepting and stop the tunnel,
    /// then end every session and wait for the transports to close.
    pub async fn shutdown(mut self) {
        let shared = self.handler.state().clone();
        shared
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let inflight = shared.inflight.clone();
        tracing::info!(
            in_flight = inflight.count(),
            "shutdown 1/4: not ready; new requests get 503, new calls an error"
        );
        let started = std::time::Instant::now();
        if tokio::time::timeout(self.grace, inflight.idle())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = inflight.count(),
                "shutdown 2/4: grace period over; cancelling remaining calls"
            );
        } else {
            tracing::info!(
                waited_ms = started.elapsed().as_millis() as u64,
                "shutdown 2/4: in-flight calls drained"
            );
        }
        self.tunnel.stop().await;
        self.stop_accepting.cancel();
        tracing::info!("shutdown 3/4: stopped accepting connections (and the tunnel)");
        self.sessions.cancel();
        tracing::info!("shutdown 4/4: sessions closed; exiting");
        let drained = tokio::time::timeout(Duration::from_secs(3), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            self.tasks.abort_all();
        }
    }
}

pub(super) async fn start(
    handler: Handler,
    mut options: Options,
    tunnel: Tunneling,
    mounts: Vec<Mount>,
) -> Result<Running> {
    if tunnel.requested() {
        // A tunnel forwards to one port: serve HTTP and WebSocket together on it (a free one
        // when neither was given).
        match (options.http, options.ws) {
            (None, None) => (options.http, options.ws) = (Some(0), Some(0)),
            (Some(port), None) | (None, Some(port)) => {
                (options.http, options.ws) = (Some(port), Some(port))
            }
            _ => {}
        }
    }
    // MCP 2026-07-28 alone keeps no sessions: a refused `initialize` opens none either.
    let latest_only = options.protocol == super::options::Revisions::Latest;
    let stateless = options.stateless || latest_only;
    handler
        .state()
        .latest_only
        .store(latest_only, std::sync::atomic::Ordering::Relaxed);
    // Install the recorder before anything counts.
    let _ = crate::observe::metrics::handle();
    let stop_accepting = CancellationToken::new();
    let sessions = CancellationToken::new();
    let finished = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let http_settings = HttpSettings {
        stateless,
        max_body: options.max_message_size,
        keep_alive: options.sse_keep_alive.max(MIN_INTERVAL),
        #[cfg(feature = "redis")]
        redis: super::shared_redis(options.state.as_deref(), &handler.state().identity.name)?,
    };
    let sse_settings = SseSettings {
        max_message: options.max_message_size,
        keep_alive: http_settings.keep_alive,
    };
    let ws_settings = WsSettings {
        max_message: options.max_message_size,
        ping_interval: options.ws_ping_interval.max(MIN_INTERVAL),
    };
    // The origins CORS answers are accepted by the Origin check too; `*` is not: it answers
    // CORS for any page, but DNS-rebinding protection stays (see --allowed-origin).
    let cors_origins: Vec<String> = options
        .cors_origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|o| !o.is_empty())
        .collect();
    let public_hostname = super::tunneling::public_hostname(&options);
    let policy = HostPolicy::new(
        &options
            .allowed_hosts
            .iter()
            .chain(&public_hostname)
            .cloned()
            .collect::<Vec<_>>(),
        &options
            .allowed_origins
            .iter()
            .chain(cors_origins.iter().filter(|o| *o != "*"))
            .cloned()
            .collect::<Vec<_>>(),
    )
    .with_trusted_proxies(&options.trusted_proxies);
    let cors = cors_layer(&cors_origins);
    let session_counts: Vec<_> = if mounts.is_empty() {
        vec![handler.state().sessions.clone()]
    } else {
        mounts.iter().map(|m| m.sessions.clone()).collect()
    };
    let session_cap = crate::security::sessions::SessionCap::new(
        options.max_sessions.unwrap_or(DEFAULT_MAX_SESSIONS),
        session_counts,
        !stateless,
    );
    let exposure = exposure(&options, tunnel.requested(), public_hostname.as_deref());
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let mut auth = Auth::resolve(&options.auth, exposure.is_some(), &policy)?;
    #[cfg(feature = "redis")]
    if let (Some(auth), Some(redis)) = (auth.as_mut(), &http_settings.redis) {
        auth.share_strikes(redis.clone());
    }
    #[cfg(feature = "redis")]
    if let Some(redis) = &http_settings.redis {
        handler
            .state()
            .subscriptions
            .share(redis.clone(), sessions.clone());
    }
    let token = auth.as_ref().and_then(|a| a.generated.clone());
    if let (Some(token), Some(why)) = (&token, &exposure) {
        super::console::announce(&format!(
            "mcp-expose: {why}, so it requires a token (--no-auth opts out).\n\
             mcp-expose: generated access token, send it as `Authorization: Bearer <token>`: {token}"
        ));
    }

    // One listener per distinct port; --http and --ws on the same port share it.
    let mut plan: Vec<(u16, bool, bool)> = Vec::new();
    if let Some(port) = options.http {
        plan.push((port, true, options.ws == Some(port)));
    }
    if let Some(port) = options.ws.filter(|p| options.http != Some(*p)) {
        plan.push((port, false, true));
    }
    let mut bound = Vec::new();
    for (port, serves_http, serves_ws) in plan {
        let addr = SocketAddr::new(options.bind, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::bind(addr, e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::with_source(ErrorKind::Bind, "cannot read the bound address", e))?;
        bound.push((listener, local, serves_http, serves_ws));
    }
    let http_addr = bound.iter().find(|b| b.2).map(|b| b.1);
    if let Some(auth) = &auth {
        let prefixes = mounts
            .iter()
            .map(|m| m.prefix.clone())
            .filter(|prefix| !prefix.is_empty())
            .collect();
        auth.bind_resource(
            http_addr.map(|a| a.port()),
            prefixes,
            tunnel.requested(),
            options.bind.is_loopback() && options.trusted_proxies.is_empty(),
        )?;
    }
    let ws_addr = bound.iter().find(|b| b.3).map(|b| b.1);
    if !options.bind.is_loopback() && !bound.is_empty() {
        tracing::warn!(bind = %options.bind, "listening beyond loopback: anyone who can reach this address can call the tools");
    }

    let identity = &handler.state().identity;
    let served: Vec<ServedAt> = if mounts.is_empty() {
        vec![ServedAt {
            name: identity.name.clone(),
            prefix: String::new(),
            mounted: false,
        }]
    } else {
        mounts
            .iter()
            .map(|m| ServedAt {
                name: m.name.clone(),
                prefix: m.prefix.clone(),
                mounted: true,
            })
            .collect()
    };
    let health = Arc::new(super::app::health_document(
        identity,
        &served,
        http_addr,
        ws_addr,
        options.stdio_selected(),
    ));
    let state: AppState = Arc::new(App {
        handler: handler.clone(),
        auth_required: auth.is_some(),
        tunnel: tunnel.clone(),
        mounts,
        ws: ws_settings,
        sessions: sessions.clone(),
        health,
        servers: served.clone(),
        http_addr,
        ws_addr,
        public_hostname: public_hostname.clone(),
        #[cfg(feature = "redis")]
        shared: http_settings.redis.clone(),
    });

    // Which caller opened each HTTP session (with auth).
    let owners = crate::security::sessions::Owners::default();
    let budget = super::accept::connection_budget();
    let connection_limits = super::accept::Limits::new(
        options.header_read_timeout.max(MIN_INTERVAL),
        options.write_timeout.max(MIN_INTERVAL),
        options.max_connections.unwrap_or(budget).min(budget),
        options.max_connections_per_client,
        &options.trusted_proxies,
    );
    for (listener, local, serves_http, serves_ws) in bound {
        let mut mcp_routes = Router::new();
        if state.mounts.is_empty() {
            if serves_http {
                let service =
                    http_transport::service(&handler, &http_settings, sessions.child_token());
                // Layered before routing: a route's layer costs a boxed clone per request.
                let service = tower::Layer::layer(&crate::observe::traffic::CountHttp, service);
                mcp_routes = mcp_routes.route_service("/mcp", service);
            }
            if serves_ws {
                mcp_routes = mcp_routes.route("/ws", any(ws_route));
            }
            if serves_http {
                let ct = sessions.child_token();
                mcp_routes = mcp_routes.merge(sse::routes(&handler, &sse_settings, ct));
            }
        }
        for server in &served {
            let prefix = &server.prefix;
            let name = if prefix.is_empty() {
                String::new()
            } else {
                format!("server `{}`: ", server.name)
            };
            if serves_http {
                tracing::info!("{name}streamable HTTP on http://{local}{prefix}/mcp");
                tracing::info!("{name}legacy HTTP+SSE on http://{local}{prefix}/sse");
            }
            if serves_ws {
                tracing::info!("{name}WebSocket on ws://{local}{prefix}/ws");
            }
        }
        // A browser gets the landing page; a WebSocket client of a single server, its session.
        mcp_routes = if serves_ws {
            mcp_routes.route("/", any(ws_route))
        } else {
            mcp_routes.route("/", get(info_route))
        };
        mcp_routes = mcp_routes.route("/.well-known/mcp", get(info_route));
        // Behind the same host policy and token as the MCP endpoints.
        mcp_routes = mcp_routes.route("/metrics", get(metrics_route));
        let mut mcp_routes: Router = mcp_routes.with_state(state.clone());
        for mount in &state.mounts {
            let routes = (mount.routes)(serves_http, serves_ws);
            mcp_routes = if mount.prefix.is_empty() {
                mcp_routes.merge(routes)
            } else {
                mcp_routes.nest(&mount.prefix, routes)
            };
        }
        if let Some(rate) = crate::security::rate::RateLimit::new(options.rate_limit) {
            #[cfg(feature = "redis")]
            let rate = rate.shared(http_settings.redis.clone(), options.rate_limit);
            mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(
                rate,
                crate::security::rate::limit,
            ));
        }
        if let Some(auth) = &auth {
            // Inside the token check: a session is its opener's.
            mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(
                owners.clone(),
                crate::security::sessions::owned,
            ));
            mcp_routes =
                mcp_routes.layer(middleware::from_fn_with_state(auth.clone(), auth::require));
            // RFC 9728 metadata: merged after the token check, so open to all.
            if let Some(metadata) = auth.metadata_routes() {
                mcp_routes = mcp_routes.merge(metadata);
            }
        }
        let admission =
            Gate::default().admission(handler.state().draining.clone(), session_cap.clone());
        let policy = policy.clone();
        mcp_routes = match &cors {
            // Outside auth: a browser's preflight carries no token; errors get CORS headers too.
            Some(cors) => mcp_routes
                .layer(admission)
                .layer(cors.clone())
                .layer(Gate::default().policy(policy)),
            None => mcp_routes.layer(admission.policy(policy)),
        };
        let router = Router::new()
            .route("/health", get(health_route))
            .route("/ready", get(ready_route))
            .fallback(not_found)
            .with_state(state.clone())
            .merge(mcp_routes);
        // Around the router, not each route: one layer, no per-route boxed clone per request.
        let app = tower::Layer::layer(&http_transport::Normalize, router);
        tasks.spawn(super::accept::serve(
            listener,
            app,
            connection_limits.clone(),
            stop_accepting.clone(),
        ));
    }

    if let Some(addr) = options.metrics_bind {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::bind(format_args!("{addr} for metrics"), e))?;
        tracing::info!(
            "metrics on http://{}/metrics",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        let router: Router = Router::new()
            .route("/metrics", get(metrics_route))
            .with_state(state.clone());
        let stop = stop_accepting.clone();
        tasks.spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
    }

    if http_addr.is_some() || ws_addr.is_some() {
        tasks.spawn(heartbeat(stop_accepting.clone()));
    }

    if options.stdio_selected() {
        let stdio_alone = http_addr.is_none() && ws_addr.is_none();
        let handler = handler.clone();
        let ct = sessions.child_token();
        let finished = finished.clone();
        let max = options.max_message_size;
        tasks.spawn(async move {
            stdio::serve(handler, tokio::io::stdin(), tokio::io::stdout(), max, ct).await;
            if stdio_alone {
                finished.cancel();
            }
        });
    }

    let fatal = Arc::new(std::sync::Mutex::new(None));
    tunnel.start(Start {
        http_addr,
        ws_addr,
        policy: &policy,
        access: Access {
            enabled: auth.is_some(),
            token: token.clone(),
        },
        servers: served
            .iter()
            .map(|s| (s.name.clone(), s.prefix.clone()))
            .collect(),
        finished: &finished,
        fatal: &fatal,
    })?;

    Ok(Running {
        http: http_addr,
        ws: ws_addr,
        handler,
        stop_accepting,
        sessions,
        finished,
        tasks,
        grace: options.shutdown_grace,
        fatal,
        tunnel,
    })
}

/// Why the server can be reached from beyond this machine, if it can: listening beyond
/// loopback, a tunnel, or a name the public uses (a public hostname, an allowed host that is
/// not local, a trusted proxy), since whatever forwards that name to loopback (cloudflared run
/// by someone else, a reverse proxy) makes every request look local.
fn exposure(options: &Options, tunneled: bool, public_hostname: Option<&str>) -> Option<String> {
    if tunneled {
        Some("this server is reachable through a tunnel".to_owned())
    } else if !options.bind.is_loopback() {
        Some(format!(
            "this server listens on {} (beyond loopback)",
            options.bind
        ))
    } else if let Some(host) = public_hostname {
        Some(format!(
            "this server is served at {host} (--public-hostname)"
        ))
    } else if let Some(host) = options
        .allowed_hosts
        .iter()
        .find(|h| !crate::security::policy::is_loopback_name(h))
    {
        Some(format!(
            "this server accepts the host `{host}` (--allowed-host)"
        ))
    } else if !options.trusted_proxies.is_empty() {
        Some("this server is behind a proxy (--trusted-proxy)".to_owned())
    } else {
        None
    }
}

/// The shortest keep-alive, ping and header-read interval: shorter ones would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// Sessions a listener holds when `--max-sessions` is not given.
pub(crate) const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// CORS for `--cors-origin`: the MCP methods, and the headers a browser client must send and read.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    // `origins` are trimmed and lower-cased; `*` anywhere means any.
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    let mcp_headers = [
        HeaderName::from_static("mcp-session-id"),
        HeaderName::from_static("mcp-protocol-version"),
        header::AUTHORIZATION,
        HeaderName::from_static("last-event-id"),
    ];
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers(
                mcp_headers
                    .iter()
                    .cloned()
                    .chain([header::CONTENT_TYPE, header::ACCEPT])
                    .collect::<Vec<_>>(),
            )
            .expose_headers(
                mcp_headers
                    .iter()
                    .cloned()
                    .chain([header::WWW_AUTHENTICATE, header::RETRY_AFTER])
                    .collect::<Vec<_>>(),
            )
            .max_age(Duration::from_secs(600)),
    )
}

/// Keeps one timer due within [`HEARTBEAT`] armed while the listeners accept.
///
/// tokio's I/O driver, parked with no timer pending, is woken (an eventfd write and a thread
/// wake-up on the other worker) by every timer registered; a request registers several
/// (hyper's header-read timeout, SSE keep-alives, a bridged POST's wait for its first
/// message), so a lone client paid a cross-thread wake-up per request. With a timer due
/// sooner always pending, those later ones (15 s and up) leave the driver asleep. Costs one
/// wake-up every few seconds.
async fn heartbeat(stop: CancellationToken) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Shorter than every per-request timer (the shortest: SSE keep-alives, 15 s by default).
const HEARTBEAT: Duration = Duration::from_secs(5);
