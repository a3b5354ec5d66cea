//! Discrete-event simulation: servers driven by periodic or sporadic job arrivals, executed as
//! the scheduler dispatches them, over many periods.

use std::collections::VecDeque;

use proptest::prelude::*;
use sis_sched::{Completion, Decision, JobSpec, Scheduler, ServerConfig, ServerId, PPB};

type Sched = Scheduler<4, 64>;

/// How the simulated CPU may be taken away from a running job.
#[derive(Clone, Copy, Debug)]
enum Preemption {
    /// At any ns (the guest's timer interrupt preempts the step).
    Anywhere,
    /// Only between steps of this many ns; a step always runs to its end, even past the slice.
    BetweenSteps(u64),
}

/// One simulated client of one server.
#[derive(Clone, Debug)]
struct Load {
    config: ServerConfig,
    /// Execution time of each job is drawn from `exec_min..=exec_max`.
    exec_min: u64,
    exec_max: u64,
    /// Inter-arrival time is `period + extra`, `extra` drawn from `0..=extra_max`.
    extra_max: u64,
    /// Rounds drawn times down to a multiple of this (1 = no rounding).
    grain: u64,
}

struct Client {
    id: ServerId,
    load: Load,
    rng: u64,
    next_arrival: u64,
    pending: VecDeque<u64>,
    completions: Vec<Completion>,
    /// Execution charged before the horizon.
    consumed_before_horizon: u64,
}

impl Client {
    fn draw(&mut self, lo: u64, hi: u64) -> u64 {
        // xorshift64*: deterministic per seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let v = lo + r % (hi - lo + 1);
        (v / self.load.grain * self.load.grain).max(self.load.grain.min(hi))
    }
}

struct Outcome {
    sched: Sched,
    clients: Vec<Client>,
}

fn simulate(loads: &[Load], horizon: u64, mode: Preemption, seed: u64) -> Outcome {
    let mut sched = Sched::default();
    let mut clients: Vec<Client> = loads
        .iter()
        .enumerate()
        .map(|(i, l)| Client {
            id: sched
                .add_server(l.config, 0)
                .expect("simulated loads are admissible"),
            load: l.clone(),
            rng: seed.wrapping_mul(31).wrapping_add(i as u64 * 7 + 1) | 1,
            next_arrival: 0,
            pending: VecDeque::new(),
            completions: Vec::new(),
            consumed_before_horizon: 0,
        })
        .collect();
    let mut now = 0u64;
    // Generous bound on loop iterations so a scheduler bug cannot hang the test.
    for _ in 0..10_000_000u64 {
        for c in &mut clients {
            while c.next_arrival <= now && c.next_arrival < horizon {
                let exec = c.draw(c.load.exec_min, c.load.exec_max);
                if sched.submit(c.id, JobSpec { max_tokens: 1 }, now).is_ok() {
                    c.pending.push_back(exec);
                }
                let extra = if c.load.extra_max == 0 {
                    0
                } else {
                    c.draw(0, c.load.extra_max)
                };
                c.next_arrival += c.load.config.period_ns + extra;
            }
        }
        let next_arrival = clients
            .iter()
            .map(|c| c.next_arrival)
            .filter(|&a| a < horizon)
            .min()
            .unwrap_or(u64::MAX);
        match sched.dispatch(now).unwrap() {
            Decision::Run(d) => {
                let c = clients.iter_mut().find(|c| c.id == d.server).unwrap();
                assert_eq!(sched.head_job(c.id).unwrap().unwrap().id, d.job);
                assert!(d.slice_ns > 0, "a dispatch must allow progress");
                let work = c.pending.front_mut().expect("dispatched server has work");
                let ran = match mode {
                    Preemption::Anywhere => (*work).min(d.slice_ns).min(next_arrival - now),
                    Preemption::BetweenSteps(step) => (*work).min(step),
                };
                let start = now;
                now += ran;
                if start < horizon {
                    c.consumed_before_horizon += ran.min(horizon - start);
                }
                sched.charge(c.id, ran, now).unwrap();
                *work -= ran;
                if *work == 0 {
                    c.pending.pop_front();
                    sched.record_tokens(c.id, 1).unwrap();
                    c.completions.push(sched.complete(c.id, now).unwrap());
                }
            }
            Decision::Idle { wake_at_ns } => {
                let next = wake_at_ns.unwrap_or(u64::MAX).min(next_arrival);
                if next == u64::MAX {
                    return Outcome { sched, clients };
                }
                assert!(next > now, "idle must move time forward");
                now = next;
            }
        }
    }
    panic!("simulation did not finish");
}

const US: u64 = 1_000;

fn load(q: u64, t: u64, exec_max: u64) -> Load {
    Load {
        config: ServerConfig::new(q, t, 0),
        exec_min: 1,
        exec_max,
        extra_max: 0,
        grain: 1,
    }
}

#[test]
fn admitted_servers_with_enough_budget_meet_every_deadline() {
    // 30% + 25% + 30% = 85%, exactly the bound; jobs use up to their full budget.
    let loads = [
        load(300 * US, 1_000 * US, 300 * US),
        load(500 * US, 2_000 * US, 500 * US),
        load(1_500 * US, 5_000 * US, 1_500 * US),
    ];
    let horizon = 500 * 5_000 * US;
    let out = simulate(&loads, horizon, Preemption::Anywhere, 42);
    for c in &out.clients {
        let expected = horizon / c.load.config.period_ns;
        assert_eq!(c.completions.len() as u64, expected);
        assert!(c.completions.iter().all(|x| !x.missed), "{:?}", c.id);
        assert!(c
            .completions
            .iter()
            .all(|x| x.response_ns <= c.load.config.period_ns));
    }
    let t = out.sched.totals();
    assert_eq!(t.counters.deadline_misses, 0);
    assert_eq!(t.counters.jobs_completed, 2_500 + 1_250 + 500);
    assert!(t.measured_ppb.unwrap() <= t.admitted_ppb);
    let jitter = t.jitter.unwrap();
    assert!(jitter.p50 <= jitter.p99);
    eprintln!(
        "85% load: {} jobs, 0 misses, measured {} ppb, response {:?}, jitter {:?}",
        t.counters.jobs_completed,
        t.measured_ppb.unwrap(),
        t.response,
        t.jitter
    );
}

#[test]
fn an_over_running_server_misses_alone_and_gets_no_more_than_its_bandwidth() {
    // The hog reserves 20% but its jobs need 50% of the CPU.
    let hog = load(200 * US, 1_000 * US, 500 * US);
    let hog = Load {
        exec_min: 500 * US,
        ..hog
    };
    let loads = [
        hog,
        load(600 * US, 2_000 * US, 600 * US),
        load(1_750 * US, 5_000 * US, 1_750 * US),
    ];
    let horizon = 400 * 5_000 * US;
    let out = simulate(&loads, horizon, Preemption::Anywhere, 7);
    let hog = &out.clients[0];
    let hog_stats = out.sched.server_stats(hog.id).unwrap();
    assert!(hog_stats.counters.deadline_misses > 0);
    assert!(hog_stats.counters.throttle_events > 0);
    assert!(hog_stats.counters.rejected_queue_full > 0);
    // Hard reservation: at most Q per period, plus one budget of slack at the start.
    let periods = horizon / 1_000 / US;
    assert!(hog.consumed_before_horizon <= (periods + 1) * 200 * US);
    for c in &out.clients[1..] {
        assert_eq!(
            c.completions.len() as u64,
            horizon / c.load.config.period_ns
        );
        assert!(c.completions.iter().all(|x| !x.missed), "{:?}", c.id);
    }
    let t = out.sched.totals();
    assert_eq!(
        t.counters.deadline_misses,
        hog_stats.counters.deadline_misses
    );
    eprintln!(
        "hog: {} completed, {} missed, {} throttles, {} queue-full, {} ns used of {} ns allowed",
        hog_stats.counters.jobs_completed,
        hog_stats.counters.deadline_misses,
        hog_stats.counters.throttle_events,
        hog_stats.counters.rejected_queue_full,
        hog.consumed_before_horizon,
        (periods + 1) * 200 * US
    );
}

#[test]
fn step_granular_preemption_meets_deadlines_when_steps_are_short() {
    // 80% utilisation; non-preemptible steps of 50 us block others for at most 5% of the
    // shortest period: 0.80 + 0.05 <= 1.
    let step = 50 * US;
    let grid = |l: Load| Load {
        grain: step,
        extra_max: 4 * step,
        exec_min: step,
        ..l
    };
    let loads = [
        grid(load(300 * US, 1_000 * US, 300 * US)),
        grid(load(500 * US, 2_000 * US, 500 * US)),
        grid(load(1_250 * US, 5_000 * US, 1_250 * US)),
    ];
    let out = simulate(&loads, 300 * 5_000 * US, Preemption::BetweenSteps(step), 3);
    assert!(out.clients.iter().all(|c| c.completions.len() > 250));
    assert_eq!(out.sched.totals().counters.deadline_misses, 0);
}

#[test]
fn deterministic_for_a_given_seed() {
    let loads = [
        load(300 * US, 1_000 * US, 300 * US),
        load(1_000 * US, 3_000 * US, 1_000 * US),
    ];
    let a = simulate(&loads, 100 * 3_000 * US, Preemption::Anywhere, 9);
    let b = simulate(&loads, 100 * 3_000 * US, Preemption::Anywhere, 9);
    assert_eq!(a.sched.totals(), b.sched.totals());
    let ca: Vec<_> = a.clients.iter().map(|c| c.completions.clone()).collect();
    let cb: Vec<_> = b.clients.iter().map(|c| c.completions.clone()).collect();
    assert_eq!(ca, cb);
}

/// A random admissible set of 2 or 3 servers whose jobs fit their budgets.
fn admissible_loads() -> impl Strategy<Value = Vec<Load>> {
    prop::collection::vec((1u64..=20, 1u64..=60, 0u64..=3), 2..=3).prop_filter_map(
        "over the bound",
        |raw| {
            // Periods 1..=20 ms in 1 ms steps; utilisation 1..=60% in 1% steps.
            let loads: Vec<Load> = raw
                .iter()
                .map(|&(t, pct, extra)| {
                    let t = t * 1_000 * US;
                    let q = t * pct / 100;
                    Load {
                        config: ServerConfig::new(q, t, 0),
                        exec_min: 1,
                        exec_max: q,
                        extra_max: extra * t / 4,
                        grain: 1,
                    }
                })
                .collect();
            let u: u64 = loads.iter().map(|l| l.config.utilisation_ppb()).sum();
            (u <= 850_000_000).then_some(loads)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_admitted_sets_with_short_steps_never_miss(
        loads in admissible_loads(),
        seed in any::<u64>(),
    ) {
        // Steps of 100 us against periods >= 1 ms: blocking <= 10%, and 0.85 + 0.10 <= 1.
        let step = 100 * US;
        let loads: Vec<Load> = loads
            .into_iter()
            .map(|l| {
                let q = (l.config.budget_ns / step).max(1) * step;
                Load {
                    config: ServerConfig::new(q, l.config.period_ns, 0),
                    exec_min: step,
                    exec_max: q,
                    extra_max: l.extra_max / step * step,
                    grain: step,
                }
            })
            .collect();
        let admitted: u64 = loads.iter().map(|l| l.config.utilisation_ppb()).sum();
        prop_assume!(admitted <= 850_000_000);
        let horizon = 60 * 20 * 1_000 * US;
        let out = simulate(&loads, horizon, Preemption::BetweenSteps(step), seed);
        prop_assert_eq!(out.sched.totals().counters.deadline_misses, 0);
        prop_assert!(out.clients.iter().all(|c| !c.completions.is_empty()));
    }

    #[test]
    fn random_admitted_sets_never_miss(loads in admissible_loads(), seed in any::<u64>()) {
        let horizon = 60 * 20 * 1_000 * US;
        let out = simulate(&loads, horizon, Preemption::Anywhere, seed);
        for c in &out.clients {
            let st = out.sched.server_stats(c.id).unwrap();
            prop_assert_eq!(st.counters.deadline_misses, 0);
            prop_assert_eq!(st.counters.rejected_queue_full, 0);
            prop_assert!(!c.completions.is_empty());
            for x in &c.completions {
                prop_assert!(x.response_ns <= c.load.config.period_ns);
            }
        }
    }

    #[test]
    fn admission_matches_a_reference_model(
        ops in prop::collection::vec((0u8..3, 0usize..4, 1u64..=1_000, 1u64..=1_000), 1..60)
    ) {
        let mut s = Scheduler::<4, 2>::default();
        let mut model: Vec<(ServerId, u64)> = Vec::new();
        let mut now = 0;
        for (op, pick, q, t) in ops {
            now += 1;
            let cfg = ServerConfig::new(q, t, 0);
            let sum: u64 = model.iter().map(|m| m.1).sum();
            match op {
                0 => {
                    let res = s.add_server(cfg, now);
                    let exact_ok = q <= t
                        && u128::from(q) * u128::from(PPB) <= u128::from(850_000_000 - sum.min(850_000_000)) * u128::from(t);
                    let fits = q <= t && sum + cfg.utilisation_ppb() <= 850_000_000;
                    // Rounding up in ppb never admits what the exact rational test rejects.
                    prop_assert!(!fits || exact_ok);
                    match res {
                        Ok(id) => {
                            prop_assert!(fits && model.len() < 4);
                            model.push((id, cfg.utilisation_ppb()));
                        }
                        Err(_) => prop_assert!(!fits || model.len() == 4),
                    }
                }
                1 if !model.is_empty() => {
                    let i = pick % model.len();
                    let others = sum - model[i].1;
                    let fits = q <= t && others + cfg.utilisation_ppb() <= 850_000_000;
                    let res = s.reconfigure(model[i].0, cfg, now);
                    prop_assert_eq!(res.is_ok(), fits);
                    if fits {
                        model[i].1 = cfg.utilisation_ppb();
                    }
                }
                2 if !model.is_empty() => {
                    let i = pick % model.len();
                    s.remove_server(model[i].0, now).unwrap();
                    model.remove(i);
                }
                _ => {}
            }
            prop_assert_eq!(s.admitted_ppb(), model.iter().map(|m| m.1).sum::<u64>());
            prop_assert!(s.admitted_ppb() <= s.bound_ppb());
        }
    }

    #[test]
    fn cycle_conversion_round_trips_within_rounding(cycles in any::<u64>(), mhz in 1u64..=4_000) {
        let freq = mhz * 1_000_000 + 1_234;
        match sis_sched::cycles_to_ns(cycles, freq) {
            Ok(ns) => {
                // ns = ceil(cycles * 1e9 / f): ns * f >= cycles * 1e9 > (ns - 1) * f.
                let lhs = u128::from(ns) * u128::from(freq);
                let c = u128::from(cycles) * 1_000_000_000;
                prop_assert!(lhs >= c);
                prop_assert!(lhs < c + u128::from(freq));
                let back = sis_sched::ns_to_cycles(ns, freq).unwrap();
                // Rounding up twice gains at most one ns worth of cycles.
                prop_assert!(back >= cycles && back - cycles <= freq.div_ceil(1_000_000_000));
            }
            Err(e) => {
                prop_assert!(u128::from(cycles) * 1_000_000_000 / u128::from(freq) >= u128::from(u64::MAX));
                let is_overflow = matches!(e, sis_sched::SchedError::ConversionOverflow { .. });
                prop_assert!(is_overflow);
            }
        }
    }
}
