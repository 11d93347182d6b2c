//! Rate limiting per bearer token, or per client address without one (GCRA, `governor`), and
//! the limit on failed token checks per client address.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::Response,
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::web::{client_of, json_error};

/// A limiter allowing `per_second` requests per client, with bursts of as many: in this
/// process, or in the Redis replicas share (then this process's own is the fallback while
/// Redis is away).
#[derive(Clone)]
pub(crate) struct RateLimit {
    local: Arc<DefaultKeyedRateLimiter<String>>,
    #[cfg(feature = "redis")]
    shared: Option<Arc<(super::shared::SharedBudget, u32)>>,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimit")
    }
}

impl RateLimit {
    pub(crate) fn new(per_second: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let limiter = Arc::new(RateLimiter::keyed(Quota::per_second(rate)));
        // Forget clients idle long enough to be back at a full burst, so the map does not grow
        // with every token and address ever seen; ends with the limiter.
        let weak = Arc::downgrade(&limiter);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(limiter) = weak.upgrade() else {
                        return;
                    };
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            });
        }
        Some(Self {
            local: limiter,
            #[cfg(feature = "redis")]
            shared: None,
        })
    }

    /// Counts in `redis`, so that the limit holds across the replicas sharing it.
    #[cfg(feature = "redis")]
    pub(crate) fn shared(mut self, redis: Option<crate::store::Redis>, per_second: u32) -> Self {
        self.shared = redis
            .map(|redis| Arc::new((super::shared::SharedBudget::new(redis, "rate"), per_second)));
        self
    }

    /// The wait before `key` may send again, or `None` when it may now.
    async fn check(&self, key: &str) -> Option<Duration> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let (budget, per_second) = shared.as_ref();
            let cost = Duration::from_secs(1) / (*per_second).max(1);
            let mode = super::shared::Mode::Spend;
            match budget.check(key, cost, Duration::from_secs(1), mode).await {
                Ok(wait) => return wait,
                Err(failure) => tracing::debug!("rate limit counted here only: {failure}"),
            }
        }
        self.local
            .check_key(&key.to_owned())
            .err()
            .map(|not_until| {
                not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ))
            })
    }
}

/// Middleware: 429 with `Retry-After` and a JSON body once a client exceeds its rate.
pub(crate) async fn limit(
    State(limit): State<RateLimit>,
    request: Request,
    next: Next,
) -> Response {
    // Who the verified token says (many clients share a proxy's address), else the address. Never
    // the raw header: anyone can send a fresh one per request.
    let key = request
        .extensions()
        .get::<super::principal::Authenticated>()
        .map(|principal| principal.0.to_string())
        .or_else(|| client_of(request.extensions()).map(|addr| format!("ip:{}", bucket(addr))))
        .unwrap_or_default();
    match limit.check(&key).await {
        None => next.run(request).await,
        Some(wait) => {
            tracing::debug!(retry_after = ?wait, "rate limited a client");
            crate::observe::metrics::rejected("rate");
            too_many("Too Many Requests: rate limit exceeded", wait)
        }
    }
}

/// 429 with a JSON body and `Retry-After` in whole seconds (rounded up, at least 1).
pub(crate) fn too_many(message: &str, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero());
    let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, message);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// What limits count per: an IPv4 address, or an IPv6 client's /64 (one host usually holds a
/// whole /64, and would otherwise have 2^64 fresh addresses to rotate through).
fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

/// Failed token checks allowed per client address and minute ([`AuthOptions::max_auth_failures`](super::AuthOptions::max_auth_failures)).
/// An address past them gets 429 for every request, with a valid token or not (a guesser must
/// not learn which guess was right), until it is back under: a steady `limit` guesses a minute
/// at most. A GCRA of its own: `governor` cannot look at a key without spending from it.
#[derive(Debug)]
pub(crate) struct Strikes {
    /// 60 s / the limit: what each failure adds to an address's debt.
    cost: Duration,
    book: Mutex<Book>,
    /// Counted in the Redis replicas share (this book is the fallback while it is away).
    #[cfg(feature = "redis")]
    shared: Option<super::shared::SharedBudget>,
}

#[derive(Debug)]
struct Book {
    /// Per address bucket: when its failures will have been paid off.
    paid_at: HashMap<IpAddr, Instant>,
    /// The size at which paid-off entries are next swept out: twice what a sweep left (at most
    /// the cap), so sweeping costs O(1) per failure however many addresses fail at once.
    sweep_at: usize,
    /// When the last sweep ran: a full book is swept at most once a second.
    swept: Instant,
    /// Whether running out of room was logged (once, not once per failure).
    full_logged: bool,
}

/// Debt beyond which an address is locked out.
const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked before the first sweep; and at most (an attacker holding more addresses
/// than this is not tracked for the new ones, rather than growing the map).
const SWEEP_AT: usize = 4096;
const MAX_TRACKED: usize = 65_536;

impl Strikes {
    /// `None` for a limit of 0 (no limit).
    pub(crate) fn new(per_minute: u32) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            cost: WINDOW / per_minute,
            book: Mutex::new(Book {
                paid_at: HashMap::new(),
                sweep_at: SWEEP_AT,
                swept: Instant::now(),
                full_logged: false,
            }),
            #[cfg(feature = "redis")]
            shared: None,
        })
    }

    /// Counts in `redis`, so that the limit holds across the replicas sharing it.
    #[cfg(feature = "redis")]
    pub(crate) fn share(&mut self, redis: crate::store::Redis) {
        self.shared = Some(super::shared::SharedBudget::new(redis, "strikes"));
    }

    /// [`locked`](Self::locked), across replicas when they share a Redis.
    pub(crate) async fn locked_anywhere(&self, addr: IpAddr) -> Option<Duration> {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let key = bucket(addr).to_string();
            let mode = super::shared::Mode::Peek;
            match shared.check(&key, self.cost, WINDOW, mode).await {
                Ok(wait) => return wait,
                Err(failure) => tracing::debug!("failed token checks counted here only: {failure}"),
            }
        }
        self.locked(addr)
    }

    /// [`strike`](Self::strike), across replicas when they share a Redis.
    pub(crate) async fn strike_anywhere(&self, addr: IpAddr) {
        #[cfg(feature = "redis")]
        if let Some(shared) = &self.shared {
            let key = bucket(addr).to_string();
            let mode = super::shared::Mode::Add;
            match shared.check(&key, self.cost, WINDOW, mode).await {
                Ok(_) => return,
                Err(failure) => tracing::debug!("failed token checks counted here only: {failure}"),
            }
        }
        self.strike(addr);
    }

    /// How long `addr` must wait before its next token check, if it is locked out.
    pub(crate) fn locked(&self, addr: IpAddr) -> Option<Duration> {
        let paid_at = *self.book().paid_at.get(&bucket(addr))?;
        self.wait(paid_at, Instant::now())
    }

    /// Counts a failed token check from `addr`.
    pub(crate) fn strike(&self, addr: IpAddr) {
        let now = Instant::now();
        let mut book = self.book();
        let full = book.paid_at.len() >= MAX_TRACKED;
        if book.paid_at.len() >= book.sweep_at
            && (!full || now.duration_since(book.swept) >= Duration::from_secs(1))
        {
            book.paid_at.retain(|_, paid_at| *paid_at > now);
            book.swept = now;
            book.sweep_at = (book.paid_at.len() * 2).clamp(SWEEP_AT, MAX_TRACKED);
        }
        let key = bucket(addr);
        if book.paid_at.len() >= MAX_TRACKED && !book.paid_at.contains_key(&key) {
            if !std::mem::replace(&mut book.full_logged, true) {
                tracing::warn!(
                    tracked = MAX_TRACKED,
                    "failed token checks from more addresses than are tracked: new ones go uncounted"
                );
            }
            return;
        }
        let paid_at = book.paid_at.entry(key).or_insert(now);
        *paid_at = (*paid_at).max(now) + self.cost;
    }

    /// Locked while one more failure would take the debt past the window.
    fn wait(&self, paid_at: Instant, now: Instant) -> Option<Duration> {
        let debt = paid_at.saturating_duration_since(now) + self.cost;
        debt.checked_sub(WINDOW).filter(|wait| !wait.is_zero())
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strikes_lock_an_address_out_after_the_limit_and_let_it_back_in() {
        let strikes = Strikes::new(3).expect("a limit");
        let guesser: IpAddr = "203.0.113.7".parse().expect("ip");
        let other: IpAddr = "198.51.100.2".parse().expect("ip");
        for _ in 0..2 {
            strikes.strike(guesser);
            assert_eq!(strikes.locked(guesser), None);
        }
        strikes.strike(guesser);
        let wait = strikes.locked(guesser).expect("locked after 3 failures");
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert_eq!(strikes.locked(other), None);
        // Paid off a third of the window later: one more guess, no more.
        let later = Instant::now() + Duration::from_secs(20);
        let paid_at = strikes.book().paid_at[&guesser];
        assert_eq!(strikes.wait(paid_at, later), None);
        assert!(strikes.wait(paid_at + strikes.cost, later).is_some());
        // One IPv6 host's /64 is one client.
        let v6: IpAddr = "2001:db8:1:2::7".parse().expect("ip");
        let neighbour: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        for _ in 0..3 {
            strikes.strike(v6);
        }
        assert!(strikes.locked(neighbour).is_some());
        assert_eq!(strikes.locked("2001:db8:1:3::7".parse().expect("ip")), None);
        assert!(Strikes::new(0).is_none());
    }

    #[test]
    fn strikes_stay_bounded_under_many_addresses() {
        let strikes = Strikes::new(30).expect("a limit");
        for n in 0..(MAX_TRACKED as u32 + 1000) {
            strikes.strike(IpAddr::V4((0x0a00_0000 + n).into()));
        }
        let late = IpAddr::V4(0xc000_0201.into());
        {
            let mut book = strikes.book();
            assert_eq!(book.paid_at.len(), MAX_TRACKED);
            assert!(book.full_logged);
            assert!(!book.paid_at.contains_key(&late));
            // Once the debts are paid off (and a second has passed), room is made again.
            let past = Instant::now() - Duration::from_secs(2);
            book.paid_at
                .values_mut()
                .for_each(|paid_at| *paid_at = past);
            book.swept = past;
        }
        strikes.strike(late);
        let book = strikes.book();
        assert_eq!(book.paid_at.len(), 1);
        assert!(book.paid_at.contains_key(&late));
    }
}
