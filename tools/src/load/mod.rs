//! `rtb-load`: an open-loop (wrk2-style) OpenRTB load generator.
//!
//! Owns: the run configuration ([`config`]), the simulated user population
//! ([`population`]), OpenRTB 2.6 request generation and the pre-built request pool
//! ([`request`]), a small HTTP/1.1 keep-alive client on monoio ([`client`]), the
//! constant-rate schedule and its threads ([`scheduler`]), the statistics
//! ([`stats`]), the report ([`report`]) and the served-impression log ([`events`]).
//!
//! Must not know: anything of the engine's internals. It speaks to the ad server
//! only over HTTP, like any exchange would.
//!
//! Latency is measured from each request's *intended* send time (coordinated
//! omission corrected); the uncorrected service time is kept apart.

pub mod client;
pub mod compare;
pub mod config;
pub mod events;
pub mod hgrm;
pub mod population;
pub mod profile;
pub mod report;
pub mod request;
pub mod scheduler;
pub mod stats;

use std::sync::Arc;
use std::time::Instant;

pub use config::{BodySource, ConfigError, Driver, LoadConfig, RequestMix, Target, UserSource};
pub use population::{Population, PopulationError, User};
pub use report::LoadReport;
pub use request::{RequestError, RequestPool};
pub use stats::Stats;

use profile::RateProfile;
use report::RunFacts;
use scheduler::{RunPlan, START_DELAY, Schedule, ScheduleError};

/// Why a load run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Population(#[from] PopulationError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("event log {file}: {source}")]
    Events {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// The result of a run: the summary and the raw merged statistics (for the table).
#[derive(Debug)]
pub struct RunOutcome {
    pub report: LoadReport,
    pub stats: Stats,
}

/// Validates `config`, builds the request pool and runs the load to completion.
/// Always returns by `warmup + duration + timeout` (plus the start delay).
pub fn run(config: &LoadConfig) -> Result<RunOutcome, LoadError> {
    config.validate()?;
    let pool = Arc::new(build_pool(config)?);
    run_with_pool(config, pool)
}

/// Builds the request pool `config` describes (loading or synthesizing users).
pub fn build_pool(config: &LoadConfig) -> Result<RequestPool, LoadError> {
    let pool = match &config.body {
        BodySource::Fixed(body) => Ok(RequestPool::fixed(&config.target, body)?),
        BodySource::Generated {
            users,
            pool_size,
            mix,
        } => {
            let population = load_population(users, config.seed)?;
            Ok(RequestPool::generated(
                &config.target,
                &population,
                mix,
                *pool_size,
                config.seed,
            )?)
        }
    };
    pool.map(|p| p.with_id_base(config.id_base))
}

/// Loads the CSV population or synthesizes one.
pub fn load_population(users: &UserSource, seed: u64) -> Result<Population, PopulationError> {
    match users {
        UserSource::Csv(path) => Population::from_csv(path),
        UserSource::Synthetic { user_count } => Population::synthesize(*user_count, seed),
    }
}

/// Runs the load with an already-built pool.
pub fn run_with_pool(config: &LoadConfig, pool: Arc<RequestPool>) -> Result<RunOutcome, LoadError> {
    config.validate()?;
    let measured = match &config.phases {
        Some(profile) => profile.clone(),
        None => RateProfile::constant(config.rate_per_s, config.duration)?,
    };
    let schedule = Schedule::new(
        Instant::now() + START_DELAY,
        &measured,
        config.warmup,
        config.connections as u64,
    )?;
    let measured_from = schedule.start + schedule.warmup;
    let events = match &config.events {
        Some(path) => Some(Arc::new(events::EventSink::create(path).map_err(
            |source| LoadError::Events {
                file: path.display().to_string(),
                source,
            },
        )?)),
        None => None,
    };
    let plan = RunPlan {
        addr: config.target.addr,
        schedule,
        timeout: config.timeout,
        threads: config.threads,
        pool,
        driver: config.driver,
        timer_spin: config.timer_spin,
        events: events.clone(),
    };
    let stats = scheduler::run_threads(&plan)?;
    if let Some(sink) = &events {
        sink.finish().map_err(|source| LoadError::Events {
            file: sink.path().display().to_string(),
            source,
        })?;
    }
    let facts = RunFacts {
        target: config.target.url.clone(),
        threads: config.threads,
        connections: config.connections,
        // The mean intended rate (the rate itself for a constant run).
        rate_target: measured.total_count() / measured.duration().as_secs_f64(),
        // At least the configured window, longer when the run drained a backlog.
        duration_s: Instant::now()
            .saturating_duration_since(measured_from)
            .max(measured.duration())
            .as_secs_f64(),
        warmup_s: config.warmup.as_secs_f64(),
    };
    Ok(RunOutcome {
        report: LoadReport::new(facts, &stats).with_phases(measured.phases(), &stats),
        stats,
    })
}
