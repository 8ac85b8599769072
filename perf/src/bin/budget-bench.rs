//! Budget check-and-deduct: a shard's sub-ledger (`engine::ledger::SubLedger::try_charge`, the
//! call the auction makes: pacing draw, clock read, idempotency check, lot check, deduct, spend
//! record) against the same decision made by `redis-server` through `EVALSHA` on loopback (our
//! RESP client): a Lua script that refuses a replayed idempotency key (`SET NX`), checks
//! `spent + cost <= limit` and deducts (`INCRBY`). Same process, same run.
//!
//! Measured:
//! - sub-ledger: ops/s on one core (one thread, CPU-bound) over `--ops` charges, and p50/p99 of
//!   individually timed charges (the ~20 ns `Instant::now` pair is included);
//! - Redis, one request in flight (what an auction waiting for its answer would see): ops/s and
//!   p50/p99 round trip;
//! - Redis, pipelined `--depth` deep (its best case): ops/s and ops per CPU-second, where CPU is
//!   this process's (getrusage) plus redis-server's (`INFO cpu`) over the run.
//!
//! "Per core" for the sub-ledger is its ops/s (it keeps one core busy); for Redis it is ops per
//! CPU-second of client + server. Prints a table, or one JSON object with `--json`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use engine::catalog::Catalog;
use engine::ledger::SubLedger;
use hdrhistogram::Histogram;
use net::resp::process::RedisProcess;
use net::resp::{Reply, RespClient, RespConfig, Script};

const CHECK_AND_DEDUCT_LUA: &str = r"
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', 86400) then return -1 end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if spent + cost > tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 0
end
redis.call('INCRBY', KEYS[1], ARGV[1])
return 1
";

const COST_MICROS: u64 = 1_000;

struct Args {
    ops: u64,
    redis_seq_ops: u64,
    redis_pipe_ops: u64,
    depth: usize,
    batch: usize,
    catalog: PathBuf,
    json: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        ops: 5_000_000,
        redis_seq_ops: 20_000,
        redis_pipe_ops: 200_000,
        depth: 64,
        batch: 16,
        catalog: PathBuf::from("engine/tests/fixtures/catalog.json"),
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--ops" => a.ops = val()?.parse()?,
            "--redis-seq-ops" => a.redis_seq_ops = val()?.parse()?,
            "--redis-pipe-ops" => a.redis_pipe_ops = val()?.parse()?,
            "--depth" => a.depth = val()?.parse()?,
            "--batch" => a.batch = val()?.parse()?,
            "--catalog" => a.catalog = val()?.into(),
            "--json" => a.json = true,
            other => anyhow::bail!(
                "unknown argument {other}; usage: budget-bench [--ops N] [--redis-seq-ops N] \
                 [--redis-pipe-ops N] [--depth N] [--batch N] [--catalog FILE] [--json]"
            ),
        }
    }
    anyhow::ensure!(
        a.ops > 0 && a.redis_seq_ops > 0 && a.redis_pipe_ops > 0,
        "counts > 0"
    );
    anyhow::ensure!((1..=1024).contains(&a.depth), "--depth 1..=1024");
    anyhow::ensure!((1..=1024).contains(&a.batch), "--batch 1..=1024");
    anyhow::ensure!(a.ops <= 100_000_000, "--ops at most 1e8 (bounded run)");
    anyhow::ensure!(
        a.redis_seq_ops <= 1_000_000 && a.redis_pipe_ops <= 10_000_000,
        "redis ops bounded (1e6 sequential, 1e7 pipelined)"
    );
    Ok(a)
}

/// The test catalog with campaign 0's budgets raised so no run exhausts them.
fn catalog(path: &PathBuf) -> anyhow::Result<Catalog> {
    let text =
        std::fs::read(path).with_context(|| format!("reading catalog {}", path.display()))?;
    let mut v: serde_json::Value = serde_json::from_slice(&text)?;
    v["campaigns"][0]["budget_daily_micros"] = serde_json::json!(1u64 << 50);
    v["campaigns"][0]["budget_lifetime_micros"] = serde_json::json!(1u64 << 52);
    Catalog::from_slice(&path.display().to_string(), &serde_json::to_vec(&v)?)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

struct Figures {
    ops: u64,
    ops_per_s: f64,
    ops_per_cpu_s: f64,
    p50_ns: u64,
    p99_ns: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn cpu_self_s() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The `i`-th distinct idempotency key: a bijection of `i` (the splitmix64 finalizer), so keys
/// look like the engine's hashed impression keys and never repeat within a run.
#[inline(always)]
fn bench_key(i: u64) -> u64 {
    let mut z = i ^ 0x5851_f42d_4c95_7f2d;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Charges between two drains of the spend journal (one budget round of a busy shard; the
/// journal, 32 bytes a record, stays in L1 as in the engine).
const DRAIN_EVERY: u64 = 512;

/// How the sub-ledger is driven.
#[derive(Clone, Copy)]
struct Drive {
    /// Charges per clock read (one request's candidates); 1 = a clock read per charge.
    batch: usize,
    /// Prefetch the next batch's key lines while charging this batch (what the auction does
    /// with a slot's key before its scoring work).
    prefetch: bool,
    /// Read the clock before every charge anyway (one charge per request), whatever `batch`.
    clock_per_charge: bool,
}

/// Either layer of the sub-ledger, as the charge loop drives it.
trait Charger {
    fn prefetch(&self, key: u64);
    fn charge(&mut self, now_ms: i64, key: u64) -> bool;
    /// Hands the spend records to the (here: no) log writer.
    fn drain(&mut self);
}

impl Charger for SubLedger {
    #[inline(always)]
    fn prefetch(&self, key: u64) {
        SubLedger::prefetch(self, key);
    }
    #[inline(always)]
    fn charge(&mut self, now_ms: i64, key: u64) -> bool {
        self.try_charge(now_ms, 0, COST_MICROS, key).is_ok()
    }
    fn drain(&mut self) {
        black_box(self.journal().count());
    }
}

impl Charger for engine::budget::subledger::SubLedger {
    #[inline(always)]
    fn prefetch(&self, key: u64) {
        engine::budget::subledger::SubLedger::prefetch(self, key);
    }
    #[inline(always)]
    fn charge(&mut self, now_ms: i64, key: u64) -> bool {
        self.try_charge(now_ms, 0, COST_MICROS, key).is_ok()
    }
    fn drain(&mut self) {
        black_box(self.journal().count());
    }
}

/// The charge loop over keys `first..first + ops` with a `clock()` read per batch; returns
/// `(wall s, CPU s)`.
fn drive<L: Charger>(
    l: &mut L,
    first: u64,
    ops: u64,
    d: Drive,
    clock: impl Fn() -> i64,
) -> anyhow::Result<(f64, f64)> {
    // The loop is compiled once per mode, so the harness tests no mode flag per charge.
    match (d.prefetch, d.clock_per_charge) {
        (false, false) => drive_loop::<L, false, false>(l, first, ops, d.batch, clock),
        (false, true) => drive_loop::<L, false, true>(l, first, ops, d.batch, clock),
        (true, false) => drive_loop::<L, true, false>(l, first, ops, d.batch, clock),
        (true, true) => drive_loop::<L, true, true>(l, first, ops, d.batch, clock),
    }
}

/// [`drive`] for one mode: `PREFETCH` the next batch's key lines, a clock read per charge
/// (`CLOCK_PER_CHARGE`) or per batch.
fn drive_loop<L: Charger, const PREFETCH: bool, const CLOCK_PER_CHARGE: bool>(
    l: &mut L,
    first: u64,
    ops: u64,
    batch: usize,
    clock: impl Fn() -> i64,
) -> anyhow::Result<(f64, f64)> {
    let (mut next, mut cur) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
    let batch = batch as u64;
    let fill = |v: &mut Vec<u64>, l: &L, from: u64| {
        v.clear();
        v.extend((from..(from + batch).min(first + ops)).map(|i| {
            let k = bench_key(i);
            if PREFETCH {
                l.prefetch(k);
            }
            k
        }));
    };
    let cpu0 = cpu_self_s();
    let t0 = Instant::now();
    fill(&mut next, l, first);
    let mut i = first;
    let mut since_drain = 0u64;
    while i < first + ops {
        std::mem::swap(&mut cur, &mut next);
        // Software pipeline: the next batch's lines load while this batch is charged.
        fill(&mut next, l, i + batch);
        let mut now = clock();
        for &k in &cur {
            if CLOCK_PER_CHARGE {
                now = clock();
            }
            if !l.charge(now, k) {
                anyhow::bail!("sub-ledger refused charge of key {k:#x}");
            }
        }
        i += cur.len() as u64;
        since_drain += cur.len() as u64;
        // The shard drains spend records every budget round (`budget.poll_ms`, 5 ms): at 100,000
        // charges per second on one shard, 500 records.
        if since_drain >= DRAIN_EVERY {
            l.drain();
            since_drain = 0;
        }
    }
    Ok((t0.elapsed().as_secs_f64(), cpu_self_s() - cpu0))
}

/// `engine::ledger::SubLedger::try_charge`, the auction's call (pacing check, lot, key set,
/// deduct, spend record), with a read of the auction's budget clock
/// (`engine::ledger::now_ms_coarse`) per `d.batch` charges.
fn subledger(cat: &Catalog, ops: u64, d: Drive, timed: bool) -> anyhow::Result<Figures> {
    let mut l = SubLedger::standalone(cat);
    let (secs, cpu) = drive(&mut l, 0, ops, d, engine::ledger::now_ms_coarse)?;
    black_box(l.journal().count());
    // Latency: each charge timed alone with its own clock read (another key range).
    let mut h = histogram();
    if timed {
        let n = ops.min(1_000_000);
        for i in 0..n {
            let t = Instant::now();
            let r = l.try_charge(
                engine::ledger::now_ms_coarse(),
                0,
                COST_MICROS,
                bench_key(ops + i),
            );
            h.saturating_record(t.elapsed().as_nanos() as u64);
            if r.is_err() {
                anyhow::bail!("sub-ledger refused timed charge {i}");
            }
            if i & 4095 == 4095 {
                black_box(l.journal().count());
            }
        }
    }
    Ok(Figures {
        ops,
        ops_per_s: ops as f64 / secs,
        ops_per_cpu_s: ops as f64 / cpu,
        p50_ns: if timed { h.value_at_quantile(0.5) } else { 0 },
        p99_ns: if timed { h.value_at_quantile(0.99) } else { 0 },
    })
}

/// The pure state machine (`engine::budget::SubLedger`): no clock read, no pacing draw, with
/// `keys_max` idempotency keys remembered (the engine's default is 262144).
fn core(cat: &Catalog, ops: u64, keys_max: usize, d: Drive) -> anyhow::Result<Figures> {
    use engine::budget::subledger::SubLedger as Core;
    use engine::ledger::BudgetSetup;
    let mut config = engine::config::Config::default();
    config.budget.pacing = "off".into();
    config.budget.keys_max = keys_max;
    let setup = BudgetSetup::new(&config, cat, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = engine::ledger::now_ms();
    let mut alloc = setup.new_allocator(now);
    let mut l = Core::new(setup.subledger, setup.calendar.clone(), now);
    let (mut out, mut recs) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        out.clear();
        l.poll(now, &mut out);
        for &req in &out {
            let reply = alloc.on_request(now, req, &mut recs);
            l.on_reply(now, reply);
        }
    }
    let (secs, cpu) = drive(&mut l, 0, ops, d, || now)?;
    Ok(Figures {
        ops,
        ops_per_s: ops as f64 / secs,
        ops_per_cpu_s: ops as f64 / cpu,
        p50_ns: 0,
        p99_ns: 0,
    })
}

fn redis_cpu_s(info: &Reply) -> anyhow::Result<f64> {
    let Reply::BulkString(b) = info else {
        anyhow::bail!("INFO cpu: unexpected reply {info:?}");
    };
    let text = String::from_utf8_lossy(b);
    let field = |name: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("INFO cpu has no {name}"))?
            .trim()
            .parse::<f64>()
            .with_context(|| format!("INFO cpu {name}"))
    };
    Ok(field("used_cpu_user:")? + field("used_cpu_sys:")?)
}

fn block_on<F: Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime")
        .block_on(f)
}

async fn redis_run(
    client: &mut RespClient,
    script: &Script,
    first_key: u64,
    ops: u64,
    depth: usize,
    latency: Option<&mut Histogram<u64>>,
) -> anyhow::Result<()> {
    let limit = (1i64 << 52).to_string();
    let cost = COST_MICROS.to_string();
    let mut replies = Vec::with_capacity(depth);
    let mut key = String::with_capacity(32);
    let mut latency = latency;
    let mut i = 0;
    while i < ops {
        let batch = (ops - i).min(depth as u64);
        for j in 0..batch {
            key.clear();
            use std::fmt::Write as _;
            let _ = write!(key, "bench:key:{}", first_key + i + j);
            client.queue_evalsha(
                script,
                &["bench:spent:c0:d0".into(), key.as_str().into()],
                &[cost.as_str().into(), limit.as_str().into()],
            )?;
        }
        replies.clear();
        let t = Instant::now();
        client.flush_into(&mut replies).await?;
        if let Some(h) = latency.as_deref_mut() {
            h.saturating_record(t.elapsed().as_nanos() as u64);
        }
        for r in &replies {
            anyhow::ensure!(*r == Reply::Integer(1), "redis refused a charge: {r:?}");
        }
        i += batch;
    }
    Ok(())
}

fn redis(args: &Args) -> anyhow::Result<(Figures, Figures)> {
    let dir = std::env::temp_dir().join(format!("adcore-budget-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut server = RedisProcess::start(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = server.addr();
    let result = block_on(async {
        let cfg = RespConfig {
            io_timeout_ms: 5_000,
            ..RespConfig::default()
        };
        let mut client = RespClient::connect(addr, cfg).await?;
        let mut script = Script::new(CHECK_AND_DEDUCT_LUA);
        client.load_script(&mut script).await?;
        // Warm-up (connection, script cache).
        redis_run(&mut client, &script, 1 << 40, 1_000, 1, None).await?;
        let mut h = histogram();
        let t0 = Instant::now();
        redis_run(&mut client, &script, 0, args.redis_seq_ops, 1, Some(&mut h)).await?;
        let secs = t0.elapsed().as_secs_f64();
        let seq = Figures {
            ops: args.redis_seq_ops,
            ops_per_s: args.redis_seq_ops as f64 / secs,
            ops_per_cpu_s: f64::NAN,
            p50_ns: h.value_at_quantile(0.5),
            p99_ns: h.value_at_quantile(0.99),
        };
        let info = ["INFO".into(), "cpu".into()];
        let server0 = redis_cpu_s(&client.call(&info).await?)?;
        let cpu0 = cpu_self_s();
        let mut hb = histogram();
        let t0 = Instant::now();
        let first = args.redis_seq_ops + 1;
        let ops = args.redis_pipe_ops;
        redis_run(&mut client, &script, first, ops, args.depth, Some(&mut hb)).await?;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_self_s() - cpu0 + redis_cpu_s(&client.call(&info).await?)? - server0;
        let pipe = Figures {
            ops,
            ops_per_s: ops as f64 / secs,
            ops_per_cpu_s: ops as f64 / cpu,
            // Per batch of `depth`: the latency each charge in it waited.
            p50_ns: hb.value_at_quantile(0.5),
            p99_ns: hb.value_at_quantile(0.99),
        };
        anyhow::Ok((seq, pipe))
    });
    server.kill();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let cat = catalog(&args.catalog)?;
    let one = Drive {
        batch: 1,
        prefetch: false,
        clock_per_charge: true,
    };
    let one_prefetched = Drive {
        batch: args.batch,
        prefetch: true,
        clock_per_charge: true,
    };
    let batched = Drive {
        batch: args.batch,
        prefetch: false,
        clock_per_charge: false,
    };
    let pipelined = Drive {
        batch: args.batch,
        prefetch: true,
        clock_per_charge: false,
    };
    // `BUDGET_BENCH_ONLY=<row>` (profiling under `perf record`): run that one row and stop.
    if let Ok(row) = std::env::var("BUDGET_BENCH_ONLY") {
        let f = match row.as_str() {
            "sub" => subledger(&cat, args.ops, one, false)?,
            "sub-one-prefetch" => subledger(&cat, args.ops, one_prefetched, false)?,
            "sub-batch" => subledger(&cat, args.ops, batched, false)?,
            "sub-prefetch" => subledger(&cat, args.ops, pipelined, false)?,
            "core" => core(&cat, args.ops, 262_144, batched)?,
            "core-prefetch" => core(&cat, args.ops, 262_144, pipelined)?,
            "core-small" => core(&cat, args.ops, 1_024, batched)?,
            "core-small-prefetch" => core(&cat, args.ops, 1_024, pipelined)?,
            other => anyhow::bail!("BUDGET_BENCH_ONLY: unknown row {other}"),
        };
        println!("{row}: {:.1} ns per charge (CPU)", 1e9 / f.ops_per_cpu_s);
        return Ok(());
    }
    let sub = subledger(&cat, args.ops, one, true)?;
    let sub_one_prefetch = subledger(&cat, args.ops, one_prefetched, false)?;
    let sub_batched = subledger(&cat, args.ops, batched, false)?;
    let sub_prefetch = subledger(&cat, args.ops, pipelined, false)?;
    let core_default = core(&cat, args.ops, 262_144, batched)?;
    let core_default_prefetch = core(&cat, args.ops, 262_144, pipelined)?;
    let core_small = core(&cat, args.ops, 1_024, batched)?;
    let core_small_prefetch = core(&cat, args.ops, 1_024, pipelined)?;
    let (seq, pipe) = redis(&args)?;
    let per_core_ratio = sub_prefetch.ops_per_cpu_s / pipe.ops_per_cpu_s;
    let seq_ratio = sub.ops_per_s / seq.ops_per_s;
    if args.json {
        let f = |x: &Figures| {
            serde_json::json!({"ops": x.ops, "ops_per_s": x.ops_per_s,
                "ops_per_cpu_s": if x.ops_per_cpu_s.is_finite() { Some(x.ops_per_cpu_s) } else { None },
                "p50_ns": x.p50_ns, "p99_ns": x.p99_ns})
        };
        let j = serde_json::json!({
            "subledger": f(&sub), "redis_sequential": f(&seq),
            "redis_pipelined": f(&pipe), "redis_depth": args.depth,
            "subledger_prefetch": f(&sub_one_prefetch),
            "subledger_batched": f(&sub_batched), "subledger_batched_prefetch": f(&sub_prefetch),
            "batch": args.batch,
            "core_keys_262144": f(&core_default), "core_keys_1024": f(&core_small),
            "core_keys_262144_prefetch": f(&core_default_prefetch),
            "core_keys_1024_prefetch": f(&core_small_prefetch),
            "ratio_per_core_vs_pipelined": per_core_ratio,
            "ratio_vs_sequential": seq_ratio,
        });
        println!("{j}");
        return Ok(());
    }
    println!(
        "{:<34} {:>10} {:>14} {:>16} {:>10} {:>10}",
        "check-and-deduct", "ops", "ops/s", "ops/CPU-s", "p50", "p99"
    );
    let row = |name: &str, x: &Figures| {
        let cpu = if x.ops_per_cpu_s.is_finite() {
            format!("{:.0}", x.ops_per_cpu_s)
        } else {
            "-".into()
        };
        println!(
            "{name:<34} {:>10} {:>14.0} {cpu:>16} {:>10} {:>10}",
            x.ops,
            x.ops_per_s,
            fmt_ns(x.p50_ns),
            fmt_ns(x.p99_ns)
        );
    };
    row("sub-ledger, clock per charge", &sub);
    row(
        &format!("sub-ledger, clock/charge, prefetch {} ahead", args.batch),
        &sub_one_prefetch,
    );
    row(&format!("sub-ledger, batch {}", args.batch), &sub_batched);
    row(
        &format!("sub-ledger, batch {} + prefetch", args.batch),
        &sub_prefetch,
    );
    row("core, 262144 keys", &core_default);
    row("core, 262144 keys + prefetch", &core_default_prefetch);
    row("core, 1024 keys", &core_small);
    row("core, 1024 keys + prefetch", &core_small_prefetch);
    row("redis EVALSHA, 1 in flight", &seq);
    row(&format!("redis EVALSHA, pipelined x{}", args.depth), &pipe);
    println!(
        "per core: sub-ledger (batch + prefetch) / redis pipelined = {per_core_ratio:.0}x; \
         sub-ledger / redis 1-in-flight ops/s = {seq_ratio:.0}x"
    );
    Ok(())
}

fn fmt_ns(ns: u64) -> String {
    let d = Duration::from_nanos(ns);
    if ns < 10_000 {
        format!("{ns} ns")
    } else {
        format!("{:.1} us", d.as_secs_f64() * 1e6)
    }
}
