//! Budgets kept in Redis, so that limits hold across replicas (`--state redis://..` with
//! `--rate-limit` or `--max-auth-failures`): a client spread over several replicas gets the
//! budget it would get from one. The same GCRA as in this process (a theoretical arrival time
//! per key), run by one Lua script on Redis's own clock, the key expiring once paid off.

use std::time::Duration;

use redis::Script;

use crate::store::{Failure, Redis};

/// `ARGV[1]`: what one event costs, `ARGV[2]`: the debt allowed (both µs), `ARGV[3]`: `spend`
/// (add the cost if within the limit), `peek` (change nothing) or `add` (add it anyway).
/// Returns how many µs over the limit the event would be (0: within).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + tonumber(ARGV[1])
local over = new - now - tonumber(ARGV[2])
if ARGV[3] == 'peek' or (ARGV[3] == 'spend' and over > 0) then
  if over > 0 then return math.floor(over) end
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.floor((new - now) / 1000) + 1000)
return 0
";

/// What a check does to the budget.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mode {
    /// Spend one event if the budget allows it.
    Spend,
    /// Look only.
    Peek,
    /// Spend one event whatever the budget says.
    Add,
}

/// Budgets under one name (`rate`, `strikes`) in the Redis replicas share.
pub(crate) struct SharedBudget {
    redis: Redis,
    name: &'static str,
    script: Script,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SharedBudget {
    pub(crate) fn new(redis: Redis, name: &'static str) -> Self {
        Self {
            redis,
            name,
            script: Script::new(GCRA),
        }
    }

    /// Checks `key`'s budget: each event costs `cost`, and a debt up to `limit` is allowed.
    /// The wait before the event would be within it, if it is not.
    pub(crate) async fn check(
        &self,
        key: &str,
        cost: Duration,
        limit: Duration,
        mode: Mode,
    ) -> Result<Option<Duration>, Failure> {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let mode = match mode {
            Mode::Spend => "spend",
            Mode::Peek => "peek",
            Mode::Add => "add",
        };
        let mut invocation = self
            .script
            .key(self.redis.key(&format!("{}:{key}", self.name)));
        invocation.arg(micros(cost)).arg(micros(limit)).arg(mode);
        let mut connection = self.redis.connection();
        let over: u64 = self
            .redis
            .bounded(invocation.invoke_async(&mut connection))
            .await?;
        Ok((over > 0).then(|| Duration::from_micros(over)))
    }
}
