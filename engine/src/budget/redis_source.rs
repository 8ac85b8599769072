//! The allocator's global budget source beyond one host: allocation counters in Redis/Valkey.
//!
//! Each host's allocator asks Redis for chunks of a campaign's budget per period (a day in the
//! advertiser's time zone, or the lifetime). One atomic Lua script (`EVALSHA`, loaded with
//! `SCRIPT LOAD`, reloaded on `NOSCRIPT`) checks and grants:
//!
//! ```text
//! cap   = budget + bound - granted_total          (nothing beyond budget + bound, ever)
//! chunk = want, or below 10 % remaining: max(remaining / (consumers * 10), min_chunk)  (seed Part 7)
//! grant = min(chunk, cap)                          granted_total += grant
//! ```
//!
//! so the sum of grants over every host never exceeds `budget + bound`, whatever the
//! interleaving. Redis holds these allocation counters only, never the ledger: spend is
//! recorded in each host's write-ahead log.
//!
//! # Lost counters only under-deliver
//!
//! Redis may lose acknowledged writes (restart without persistence, failover). A lost counter
//! that silently restarted at zero would grant the budget twice. So every counter is valid only
//! under an *epoch*: a random id stored in `{prefix}:epoch`, created once by
//! [`RedisBudget::bootstrap`] and checked by every script call. After data loss the epoch key is
//! gone, every grant answers [`Grant::CountersLost`] (the allocator grants nothing: the campaign
//! under-delivers) until an operator or the allocator re-bootstraps with seeds taken from the
//! hosts' ledgers (the granted totals they recorded). Seeding only raises counters, never
//! lowers them. Configure Redis with `maxmemory-policy noeviction` so single keys are not
//! evicted (an evicted counter under a live epoch would read as zero).
//!
//! Knows nothing of shards or sub-ledgers; the allocator decides when to ask and how much.

use std::fmt::Write as _;
use std::net::SocketAddr;

use net::resp::{Reply, RespClient, RespConfig, RespError, Script};

/// Largest amount handled: Lua numbers are doubles, exact up to 2^53.
pub const MAX_MICROS: u64 = 1 << 53;

const GRANT_LUA: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {-1, 0} end
local budget = tonumber(ARGV[2])
local bound = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local consumers = tonumber(ARGV[5])
local min_chunk = tonumber(ARGV[6])
local granted = tonumber(redis.call('HGET', KEYS[2], 'granted') or '0')
local cap = budget + bound - granted
if cap <= 0 or want <= 0 then return {0, granted} end
local chunk = want
local remaining = budget - granted
if remaining * 10 < budget then
  local a = math.floor(math.max(remaining, 0) / (consumers * 10))
  if a < min_chunk then a = min_chunk end
  if a < chunk then chunk = a end
end
if chunk > cap then chunk = cap end
redis.call('HINCRBY', KEYS[2], 'granted', string.format('%d', chunk))
redis.call('HSET', KEYS[2], 'budget', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return {chunk, granted + chunk}
";

const GIVE_BACK_LUA: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local granted = tonumber(redis.call('HGET', KEYS[2], 'granted') or '0')
local amount = tonumber(ARGV[2])
if amount > granted then amount = granted end
redis.call('HINCRBY', KEYS[2], 'granted', string.format('%d', -amount))
return granted - amount
";

/// Raises a counter to at least the seed (never lowers it); sets its expiry.
const SEED_LUA: &str = r"
local granted = tonumber(redis.call('HGET', KEYS[1], 'granted') or '0')
local seed = tonumber(ARGV[1])
if seed > granted then
  redis.call('HSET', KEYS[1], 'granted', ARGV[1])
  granted = seed
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return granted
";

/// Where and how the counters live.
#[derive(Debug, Clone)]
pub struct RedisBudgetConfig {
    pub addr: SocketAddr,
    pub resp: RespConfig,
    /// Prefix of every key: `{prefix}:epoch`, `{prefix}:{campaign}:{period}`.
    pub key_prefix: String,
    /// Allocators (hosts) sharing each budget: `S` in the shrinking chunk rule.
    pub consumers: u32,
    /// Smallest chunk granted when the rule would give less (still capped by budget + bound).
    pub min_chunk_micros: u64,
    /// Expiry of a counter after its last grant (longer than a period plus clock skew).
    pub key_ttl_s: u64,
}

impl RedisBudgetConfig {
    pub fn new(addr: SocketAddr) -> RedisBudgetConfig {
        RedisBudgetConfig {
            addr,
            resp: RespConfig::default(),
            key_prefix: "adcore:budget".into(),
            consumers: 1,
            min_chunk_micros: 1_000,
            key_ttl_s: 3 * 24 * 3600,
        }
    }
}

/// Which budget of a campaign a counter tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Day number in the advertiser's time zone (days since 1970-01-01 there).
    Day(i64),
    Lifetime,
}

/// One check-and-grant question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRequest {
    pub campaign: u32,
    pub period: Period,
    pub budget_micros: u64,
    /// The part of the inaccuracy bound the global level may grant beyond the budget.
    pub bound_micros: u64,
    pub want_micros: u64,
}

/// Redis's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// `micros` (> 0) granted; the period's total granted over every host is now `total`.
    Granted { micros: u64, total_micros: u64 },
    /// Nothing left to grant (total granted has reached budget + bound).
    Exhausted { total_micros: u64 },
    /// The counters were lost (no or another epoch): nothing granted until re-bootstrapped.
    CountersLost,
}

/// A counter's starting point for [`RedisBudget::bootstrap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    pub campaign: u32,
    pub period: Period,
    /// Granted so far according to the hosts' ledgers.
    pub granted_micros: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RedisBudgetError {
    #[error(transparent)]
    Resp(#[from] RespError),
    #[error("redis budget: amount {0} micros exceeds {MAX_MICROS} (Lua numbers are doubles)")]
    TooLarge(u64),
    #[error("redis budget: unexpected reply to {what}: {reply:?}")]
    Reply { what: &'static str, reply: Reply },
}

impl RedisBudgetError {
    /// True when trying again (after [`RedisBudget::reconnect`]) may succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, RedisBudgetError::Resp(e) if e.retryable())
    }
}

/// A connection to the counters, with the three scripts and the epoch in force.
#[derive(Debug)]
pub struct RedisBudget {
    cfg: RedisBudgetConfig,
    client: RespClient,
    grant: Script,
    give_back: Script,
    seed: Script,
    epoch: Option<String>,
    key: String,
}

fn checked(v: u64) -> Result<u64, RedisBudgetError> {
    if v > MAX_MICROS {
        Err(RedisBudgetError::TooLarge(v))
    } else {
        Ok(v)
    }
}

fn int(reply: &Reply) -> Option<i64> {
    match reply {
        Reply::Integer(i) => Some(*i),
        _ => None,
    }
}

impl RedisBudget {
    /// Connects and reads the epoch in force (none yet: grants answer `CountersLost`).
    pub async fn connect(cfg: RedisBudgetConfig) -> Result<RedisBudget, RedisBudgetError> {
        assert!(cfg.consumers > 0, "consumers > 0");
        let client = RespClient::connect(cfg.addr, cfg.resp).await?;
        let mut rb = RedisBudget {
            cfg,
            client,
            grant: Script::new(GRANT_LUA),
            give_back: Script::new(GIVE_BACK_LUA),
            seed: Script::new(SEED_LUA),
            epoch: None,
            key: String::with_capacity(64),
        };
        rb.attach().await?;
        Ok(rb)
    }

    /// Replaces a broken connection.
    pub async fn reconnect(&mut self) -> Result<(), RedisBudgetError> {
        self.client.reconnect().await?;
        Ok(())
    }

    fn epoch_key(&self) -> String {
        format!("{}:epoch", self.cfg.key_prefix)
    }

    fn set_counter_key(&mut self, campaign: u32, period: Period) {
        self.key.clear();
        let _ = match period {
            Period::Day(d) => write!(self.key, "{}:{campaign}:d{d}", self.cfg.key_prefix),
            Period::Lifetime => write!(self.key, "{}:{campaign}:life", self.cfg.key_prefix),
        };
    }

    /// Re-reads the epoch in force; returns it (None: counters lost or never bootstrapped).
    pub async fn attach(&mut self) -> Result<Option<&str>, RedisBudgetError> {
        let key = self.epoch_key();
        self.epoch = match self
            .client
            .call(&["GET".into(), key.as_str().into()])
            .await?
        {
            Reply::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Reply::Null => None,
            reply => {
                return Err(RedisBudgetError::Reply {
                    what: "GET epoch",
                    reply,
                });
            }
        };
        Ok(self.epoch.as_deref())
    }

    /// The epoch this connection grants under.
    pub fn epoch(&self) -> Option<&str> {
        self.epoch.as_deref()
    }

    /// Starts counting under a new epoch, first raising every seeded counter to at least its
    /// seed. If another process bootstrapped first, adopts its epoch instead (the seeds still
    /// only raise counters). Returns the epoch in force.
    pub async fn bootstrap(&mut self, seeds: &[Seed]) -> Result<String, RedisBudgetError> {
        for s in seeds {
            let granted = checked(s.granted_micros)?;
            self.set_counter_key(s.campaign, s.period);
            let (key, ttl) = (self.key.clone(), self.cfg.key_ttl_s);
            let reply = self
                .client
                .eval(
                    &mut self.seed,
                    &[key.as_str().into()],
                    &[granted.into(), ttl.into()],
                )
                .await?;
            if int(&reply).is_none() {
                return Err(RedisBudgetError::Reply {
                    what: "seed",
                    reply,
                });
            }
        }
        let fresh = new_epoch();
        let key = self.epoch_key();
        let set = [
            "SET".into(),
            key.as_str().into(),
            fresh.as_str().into(),
            "NX".into(),
        ];
        self.client.call(&set).await?;
        match self.attach().await? {
            Some(e) => Ok(e.to_owned()),
            None => Err(RedisBudgetError::Reply {
                what: "SET epoch NX",
                reply: Reply::Null,
            }),
        }
    }

    /// One atomic check-and-grant.
    pub async fn grant(&mut self, req: GrantRequest) -> Result<Grant, RedisBudgetError> {
        let Some(epoch) = self.epoch.clone() else {
            return Ok(Grant::CountersLost);
        };
        let args = [
            checked(req.budget_micros)?,
            checked(req.bound_micros)?,
            checked(req.want_micros)?,
            u64::from(self.cfg.consumers),
            checked(self.cfg.min_chunk_micros)?,
            self.cfg.key_ttl_s,
        ];
        checked(req.budget_micros + req.bound_micros)?;
        self.set_counter_key(req.campaign, req.period);
        let keys = [self.epoch_key(), self.key.clone()];
        let reply = self
            .client
            .eval(
                &mut self.grant,
                &[keys[0].as_str().into(), keys[1].as_str().into()],
                &[
                    epoch.as_str().into(),
                    args[0].into(),
                    args[1].into(),
                    args[2].into(),
                    args[3].into(),
                    args[4].into(),
                    args[5].into(),
                ],
            )
            .await?;
        let pair = match &reply {
            Reply::Array(a) if a.len() == 2 => (int(&a[0]), int(&a[1])),
            _ => (None, None),
        };
        let grant = match pair {
            (Some(-1), _) => Grant::CountersLost,
            (Some(0), Some(t)) if t >= 0 => Grant::Exhausted {
                total_micros: t as u64,
            },
            (Some(g), Some(t)) if g > 0 && t >= g => Grant::Granted {
                micros: g as u64,
                total_micros: t as u64,
            },
            _ => {
                return Err(RedisBudgetError::Reply {
                    what: "grant",
                    reply,
                });
            }
        };
        if let Grant::Granted {
            micros,
            total_micros,
        } = grant
        {
            assert!(
                micros <= req.want_micros,
                "granted {micros} > wanted {}",
                req.want_micros
            );
            assert!(
                total_micros <= req.budget_micros + req.bound_micros,
                "total granted {total_micros} exceeds budget {} + bound {}",
                req.budget_micros,
                req.bound_micros
            );
        }
        if grant == Grant::CountersLost {
            self.epoch = None;
        }
        Ok(grant)
    }

    /// Returns unspent micros of a period (never below zero); the new total granted, or None
    /// when the counters were lost (the return is dropped: under-delivery only).
    pub async fn give_back(
        &mut self,
        campaign: u32,
        period: Period,
        micros: u64,
    ) -> Result<Option<u64>, RedisBudgetError> {
        let Some(epoch) = self.epoch.clone() else {
            return Ok(None);
        };
        let micros = checked(micros)?;
        self.set_counter_key(campaign, period);
        let keys = [self.epoch_key(), self.key.clone()];
        let reply = self
            .client
            .eval(
                &mut self.give_back,
                &[keys[0].as_str().into(), keys[1].as_str().into()],
                &[epoch.as_str().into(), micros.into()],
            )
            .await?;
        match int(&reply) {
            Some(-1) => {
                self.epoch = None;
                Ok(None)
            }
            Some(t) if t >= 0 => Ok(Some(t as u64)),
            _ => Err(RedisBudgetError::Reply {
                what: "give_back",
                reply,
            }),
        }
    }

    /// Total granted for a period as Redis has it (None: no counter).
    pub async fn total_granted(
        &mut self,
        campaign: u32,
        period: Period,
    ) -> Result<Option<u64>, RedisBudgetError> {
        self.set_counter_key(campaign, period);
        let key = self.key.clone();
        match self
            .client
            .call(&["HGET".into(), key.as_str().into(), "granted".into()])
            .await?
        {
            Reply::Null => Ok(None),
            Reply::BulkString(b) => std::str::from_utf8(&b)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or(RedisBudgetError::Reply {
                    what: "HGET granted",
                    reply: Reply::BulkString(b),
                }),
            reply => Err(RedisBudgetError::Reply {
                what: "HGET granted",
                reply,
            }),
        }
    }

    /// The raw client (benchmarks pipeline grant scripts through it).
    pub fn client_mut(&mut self) -> &mut RespClient {
        &mut self.client
    }
}

/// A fresh epoch id: wall-clock nanoseconds and the process id (unique enough across
/// bootstraps, which are rare operator events).
fn new_epoch() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}
