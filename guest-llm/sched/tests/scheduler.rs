//! Behaviour of the scheduler through its public API.

use sis_sched::{
    ChargeOutcome, Decision, JobSpec, SchedError, Scheduler, ServerConfig, ServerId, PPB,
};

type Sched = Scheduler<4, 4>;

const MS: u64 = 1_000_000;

fn cfg(q: u64, t: u64) -> ServerConfig {
    ServerConfig::new(q, t, 0)
}

fn job(tokens: u32) -> JobSpec {
    JobSpec { max_tokens: tokens }
}

fn run(d: Decision) -> sis_sched::Dispatch {
    match d {
        Decision::Run(d) => d,
        other => panic!("expected a dispatch, got {other:?}"),
    }
}

#[test]
fn admission_exactly_at_the_bound_is_accepted_one_ns_more_is_not() {
    let mut s = Sched::default();
    s.add_server(cfg(500 * MS, 1_000 * MS), 0).unwrap();
    let mut over = s.clone();
    assert_eq!(
        over.add_server(cfg(350 * MS + 1, 1_000 * MS), 0),
        Err(SchedError::UtilisationExceeded {
            requested_ppb: 350_000_001,
            others_ppb: 500_000_000,
            bound_ppb: 850_000_000
        })
    );
    assert_eq!(over.totals().admission.rejected_bound, 1);
    assert_eq!(over.totals().servers, 1);
    assert_eq!(over.admitted_ppb(), 500_000_000);
    s.add_server(cfg(350 * MS, 1_000 * MS), 0).unwrap();
    assert_eq!(s.admitted_ppb(), 850_000_000);
    assert_eq!(s.totals().admission.accepted, 2);
    // Nothing at all fits any more.
    assert!(s.add_server(cfg(1, u64::MAX), 0).is_err());
}

#[test]
fn invalid_parameters_are_rejected_and_counted() {
    let mut s = Sched::default();
    assert_eq!(s.add_server(cfg(1, 0), 0), Err(SchedError::ZeroPeriod));
    assert_eq!(s.add_server(cfg(0, 10), 0), Err(SchedError::ZeroBudget));
    assert_eq!(
        s.add_server(cfg(11, 10), 0),
        Err(SchedError::BudgetExceedsPeriod {
            budget_ns: 11,
            period_ns: 10
        })
    );
    let t = s.totals();
    assert_eq!(t.admission.rejected_invalid, 3);
    assert_eq!(t.admission.rejected(), 3);
    assert_eq!(t.servers, 0);
    assert_eq!(
        Sched::new(0).err(),
        Some(SchedError::InvalidBound { bound_ppb: 0 })
    );
    assert!(Sched::new(PPB + 1).is_err());
    assert_eq!(Sched::new(PPB).unwrap().bound_ppb(), PPB);
}

#[test]
fn full_slot_table_is_an_error() {
    let mut s = Sched::new(PPB).unwrap();
    for _ in 0..4 {
        s.add_server(cfg(1, 100), 0).unwrap();
    }
    assert_eq!(
        s.add_server(cfg(1, 100), 0),
        Err(SchedError::TooManyServers { capacity: 4 })
    );
    assert_eq!(s.totals().admission.rejected_capacity, 1);
}

#[test]
fn reconfigure_rechecks_admission_against_the_others_only() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(50, 100), 0).unwrap();
    let b = s.add_server(cfg(30, 100), 0).unwrap();
    // a alone may grow to 55%: 55 + 30 = 85.
    s.reconfigure(a, ServerConfig::new(55, 100, 8), 5).unwrap();
    assert_eq!(s.admitted_ppb(), 850_000_000);
    let before = s.server_stats(a).unwrap();
    assert!(matches!(
        s.reconfigure(a, cfg(56, 100), 6),
        Err(SchedError::UtilisationExceeded { .. })
    ));
    assert_eq!(
        s.reconfigure(a, cfg(0, 100), 6),
        Err(SchedError::ZeroBudget)
    );
    assert_eq!(s.server_stats(a).unwrap(), before);
    assert_eq!(s.server_stats(a).unwrap().config.max_tokens_per_period, 8);
    // Shrinking b makes room for a.
    s.reconfigure(b, cfg(10, 100), 7).unwrap();
    s.reconfigure(a, cfg(75, 100), 7).unwrap();
    let t = s.totals();
    assert_eq!(t.admission.accepted, 5);
    assert_eq!(t.admission.rejected_bound, 1);
    assert_eq!(t.admission.rejected_invalid, 1);
    assert_eq!(
        s.reconfigure(ServerId(99), cfg(1, 100), 7),
        Err(SchedError::UnknownServer(ServerId(99)))
    );
}

#[test]
fn remove_frees_utilisation_but_not_while_jobs_are_queued() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(85, 100), 0).unwrap();
    let j = s.submit(a, job(1), 0).unwrap();
    assert_eq!(
        s.remove_server(a, 1),
        Err(SchedError::ServerBusy {
            server: a,
            pending: 1
        })
    );
    s.cancel(a, j, 2).unwrap();
    s.remove_server(a, 3).unwrap();
    assert_eq!(s.admitted_ppb(), 0);
    assert_eq!(s.server_stats(a), Err(SchedError::UnknownServer(a)));
    // The removed server's counters stay in the totals; its id is not reused.
    assert_eq!(s.totals().counters.jobs_canceled, 1);
    let b = s.add_server(cfg(85, 100), 4).unwrap();
    assert_ne!(a, b);
}

#[test]
fn time_going_backwards_is_refused_and_changes_nothing() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 50).unwrap();
    let err = SchedError::TimeWentBackwards {
        last_ns: 50,
        now_ns: 49,
    };
    assert_eq!(s.submit(a, job(1), 49), Err(err));
    assert_eq!(s.dispatch(49), Err(err));
    assert_eq!(s.add_server(cfg(10, 100), 49), Err(err));
    assert_eq!(s.totals().counters.jobs_admitted, 0);
    assert_eq!(s.now_ns(), 50);
}

#[test]
fn edf_picks_the_earliest_deadline_and_breaks_ties_by_id() {
    let mut s = Sched::new(PPB).unwrap();
    let slow = s.add_server(cfg(10, 300), 0).unwrap();
    let fast = s.add_server(cfg(10, 100), 0).unwrap();
    let mid = s.add_server(cfg(10, 200), 0).unwrap();
    let twin = s.add_server(cfg(10, 100), 0).unwrap();
    for id in [slow, twin, mid, fast] {
        s.submit(id, job(1), 0).unwrap();
    }
    let mut order = Vec::new();
    let mut now = 0;
    while let Decision::Run(d) = s.dispatch(now).unwrap() {
        assert_eq!(d.slice_ns, 10);
        now += 5;
        s.charge(d.server, 5, now).unwrap();
        s.complete(d.server, now).unwrap();
        order.push(d.server);
    }
    // fast and twin share deadline 100: the smaller id (fast, created first) goes first.
    assert_eq!(order, vec![fast, twin, mid, slow]);
    assert_eq!(s.totals().counters.deadline_misses, 0);
}

#[test]
fn exhausted_server_is_throttled_and_yields_to_others() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(20, 100), 0).unwrap();
    let b = s.add_server(cfg(40, 200), 0).unwrap();
    s.submit(a, job(1), 0).unwrap();
    s.submit(b, job(1), 0).unwrap();
    let d = run(s.dispatch(0).unwrap());
    assert_eq!((d.server, d.deadline_ns, d.slice_ns), (a, 100, 20));
    // a uses its whole budget without finishing: throttled until 100, deadline 200.
    assert_eq!(
        s.charge(a, 20, 20).unwrap(),
        ChargeOutcome {
            remaining_ns: 20,
            deadline_ns: 200,
            throttled_until: Some(100),
            overrun_ns: 0
        }
    );
    // b runs. a (deadline 200 after replenishment at 100) ties with b's 200 and has the smaller
    // id, so it would preempt b at 100 (80 ns from now); b's budget of 40 ends first.
    let d = run(s.dispatch(20).unwrap());
    assert_eq!((d.server, d.deadline_ns, d.slice_ns), (b, 200, 40));
    s.charge(b, 40, 60).unwrap();
    // Both throttled now: idle until the earliest replenishment.
    assert_eq!(
        s.dispatch(60).unwrap(),
        Decision::Idle {
            wake_at_ns: Some(100)
        }
    );
    let d = run(s.dispatch(100).unwrap());
    assert_eq!((d.server, d.deadline_ns), (a, 200));
    let st = s.server_stats(a).unwrap();
    assert_eq!(st.counters.throttle_events, 1);
    assert_eq!(st.throttled_until, None);
    assert_eq!(s.totals().counters.throttle_events, 2);
}

#[test]
fn slice_stops_at_the_replenishment_of_an_earlier_deadline_server() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 50), 0).unwrap();
    let b = s.add_server(cfg(300, 1_000), 0).unwrap();
    s.submit(a, job(1), 0).unwrap();
    s.charge(a, 10, 10).unwrap(); // throttled until 50, deadline 100
    s.submit(b, job(1), 10).unwrap(); // deadline 1010
    let d = run(s.dispatch(10).unwrap());
    assert_eq!(d.server, b);
    assert_eq!(d.slice_ns, 40);
    s.charge(b, 40, 50).unwrap();
    assert_eq!(run(s.dispatch(50).unwrap()).server, a);
}

#[test]
fn overrun_is_counted_and_pushes_the_server_back() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 0).unwrap();
    s.submit(a, job(1), 0).unwrap();
    let out = s.charge(a, 35, 35).unwrap();
    assert_eq!(out.overrun_ns, 25);
    assert_eq!(out.deadline_ns, 400);
    assert_eq!(out.throttled_until, Some(300));
    assert_eq!(out.remaining_ns, 5);
    let st = s.server_stats(a).unwrap();
    assert_eq!(st.counters.overrun_ns, 25);
    assert_eq!(st.counters.consumed_ns, 35);
    let c = s.complete(a, 40).unwrap();
    // Released with deadline 100, completed at 40: met despite the overrun.
    assert!(!c.missed);
    assert_eq!((c.deadline_ns, c.consumed_ns, c.steps), (100, 35, 1));
}

#[test]
fn an_over_budget_job_misses_its_deadline() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 0).unwrap();
    s.submit(a, job(1), 0).unwrap();
    s.charge(a, 10, 10).unwrap();
    assert_eq!(
        s.dispatch(10).unwrap(),
        Decision::Idle {
            wake_at_ns: Some(100)
        }
    );
    s.charge(a, 5, 105).unwrap();
    let c = s.complete(a, 105).unwrap();
    assert!(c.missed);
    assert_eq!((c.deadline_ns, c.lateness_ns, c.response_ns), (100, 5, 105));
    let st = s.server_stats(a).unwrap();
    assert_eq!(st.counters.deadline_misses, 1);
    assert_eq!(st.counters.max_lateness_ns, 5);
}

#[test]
fn completion_exactly_at_the_deadline_is_not_a_miss() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 0).unwrap();
    s.submit(a, job(1), 0).unwrap();
    s.charge(a, 9, 100).unwrap();
    assert!(!s.complete(a, 100).unwrap().missed);
}

#[test]
fn queued_job_is_released_with_the_deadline_current_when_it_reaches_the_head() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(30, 100), 0).unwrap();
    let j1 = s.submit(a, job(1), 0).unwrap();
    let j2 = s.submit(a, job(1), 0).unwrap();
    assert_eq!(s.head_job(a).unwrap().unwrap().id, j1);
    s.charge(a, 20, 20).unwrap();
    s.complete(a, 20).unwrap();
    let head = s.head_job(a).unwrap().unwrap();
    assert_eq!((head.id, head.deadline_ns), (j2, Some(100)));
    // j2 needs 20 but only 10 budget remains: exhausted, throttled to 100, finishes at 110.
    s.charge(a, 10, 30).unwrap();
    s.charge(a, 10, 110).unwrap();
    let c = s.complete(a, 110).unwrap();
    assert!(c.missed);
    assert_eq!(c.lateness_ns, 10);
}

#[test]
fn arrival_rule_reuses_a_deadline_when_the_budget_left_is_small() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(50, 100), 0).unwrap();
    s.submit(a, job(1), 0).unwrap();
    s.charge(a, 40, 40).unwrap();
    s.complete(a, 40).unwrap();
    // c=10, d=100; at t=70 the rule keeps (10, 100).
    s.submit(a, job(1), 70).unwrap();
    let d = run(s.dispatch(70).unwrap());
    assert_eq!((d.deadline_ns, d.slice_ns), (100, 10));
    s.charge(a, 5, 75).unwrap();
    s.complete(a, 75).unwrap();
    // c=5, d=100; at t=90: 5*100 >= 10*50 -> new (50, 190).
    s.submit(a, job(1), 90).unwrap();
    let d = run(s.dispatch(90).unwrap());
    assert_eq!((d.deadline_ns, d.slice_ns), (190, 50));
}

#[test]
fn token_quota_rejects_the_request_that_exceeds_it_in_the_period() {
    let mut s = Sched::default();
    let a = s
        .add_server(ServerConfig::new(100 * MS, 1_000 * MS, 8), 0)
        .unwrap();
    s.submit(a, job(8), 0).unwrap();
    assert_eq!(
        s.submit(a, job(1), 500 * MS),
        Err(SchedError::QuotaExceeded {
            requested: 1,
            used: 8,
            limit: 8
        })
    );
    let st = s.server_stats(a).unwrap();
    assert_eq!(st.counters.rejected_quota, 1);
    assert_eq!(st.counters.jobs_admitted, 1);
    assert_eq!(st.queue_depth, 1);
    assert_eq!(st.quota_used, 8);
    // Next window: [1000 ms, 2000 ms).
    s.submit(a, job(5), 1_000 * MS).unwrap();
    s.submit(a, job(3), 1_000 * MS).unwrap();
    assert!(s.submit(a, job(1), 1_999 * MS).is_err());
    // A request larger than the whole quota never fits.
    assert!(matches!(
        s.submit(a, job(9), 2_000 * MS),
        Err(SchedError::QuotaExceeded { .. })
    ));
    assert_eq!(s.totals().counters.rejected_quota, 3);
    assert_eq!(s.totals().counters.jobs_rejected(), 3);
}

#[test]
fn full_queue_and_zero_tokens_are_rejected_and_counted() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 0).unwrap();
    for _ in 0..4 {
        s.submit(a, job(1), 0).unwrap();
    }
    assert_eq!(
        s.submit(a, job(1), 0),
        Err(SchedError::QueueFull {
            server: a,
            capacity: 4
        })
    );
    assert_eq!(s.submit(a, job(0), 0), Err(SchedError::ZeroTokens));
    let st = s.server_stats(a).unwrap();
    assert_eq!(st.counters.rejected_queue_full, 1);
    assert_eq!(st.counters.rejected_invalid, 1);
    assert_eq!((st.queue_depth, st.max_queue_depth), (4, 4));
    assert_eq!(s.totals().queue_depth, 4);
    assert_eq!(
        s.submit(ServerId(7), job(1), 0),
        Err(SchedError::UnknownServer(ServerId(7)))
    );
}

#[test]
fn tokens_are_credited_to_the_head_job_up_to_what_it_asked_for() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 0).unwrap();
    assert_eq!(s.record_tokens(a, 1), Err(SchedError::NoPendingJob(a)));
    let j = s.submit(a, job(3), 0).unwrap();
    s.record_tokens(a, 2).unwrap();
    assert_eq!(
        s.record_tokens(a, 2),
        Err(SchedError::TokensExceedJob {
            job: j,
            max_tokens: 3,
            produced: 2,
            adding: 2
        })
    );
    s.record_tokens(a, 1).unwrap();
    assert_eq!(s.complete(a, 5).unwrap().tokens, 3);
    assert_eq!(s.totals().counters.tokens, 3);
    assert_eq!(s.complete(a, 6), Err(SchedError::NoPendingJob(a)));
    assert_eq!(s.charge(a, 1, 6), Err(SchedError::NoPendingJob(a)));
}

#[test]
fn cancel_removes_a_waiting_or_running_job() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 0).unwrap();
    let j1 = s.submit(a, job(1), 0).unwrap();
    let j2 = s.submit(a, job(1), 0).unwrap();
    let j3 = s.submit(a, job(1), 0).unwrap();
    s.cancel(a, j2, 1).unwrap();
    assert_eq!(s.cancel(a, j2, 1), Err(SchedError::UnknownJob(j2)));
    s.cancel(a, j1, 2).unwrap();
    let head = s.head_job(a).unwrap().unwrap();
    assert_eq!((head.id, head.deadline_ns), (j3, Some(100)));
    let st = s.server_stats(a).unwrap();
    assert_eq!((st.queue_depth, st.counters.jobs_canceled), (1, 2));
}

#[test]
fn response_time_and_jitter_percentiles() {
    let mut s = Sched::new(PPB).unwrap();
    let a = s.add_server(cfg(100, 100), 0).unwrap();
    // Response times 10, 30, 20, 60 -> jitter samples 20, 10, 40.
    let mut now = 0;
    for r in [10, 30, 20, 60] {
        now += 1_000;
        s.submit(a, job(1), now).unwrap();
        s.charge(a, r / 2, now + r).unwrap();
        s.complete(a, now + r).unwrap();
    }
    let st = s.server_stats(a).unwrap();
    let resp = st.response.unwrap();
    assert_eq!((resp.p50, resp.p99, resp.max, resp.window), (20, 60, 60, 4));
    let jit = st.jitter.unwrap();
    assert_eq!((jit.p50, jit.p99, jit.window), (20, 40, 3));
    let t = s.totals();
    assert_eq!(t.response, st.response);
    assert_eq!(t.jitter, st.jitter);
    assert_eq!(t.counters.jobs_completed, 4);
    // 60 ns charged over 4060 - 0 ns observed.
    assert_eq!(t.counters.consumed_ns, 60);
    assert_eq!(t.measured_ppb, Some(60 * PPB / 4_060));
}

#[test]
fn a_throttled_idle_server_keeps_its_postponed_deadline_for_new_work() {
    let mut s = Sched::default();
    let a = s.add_server(cfg(10, 100), 0).unwrap();
    s.submit(a, job(1), 0).unwrap();
    s.charge(a, 10, 10).unwrap();
    s.complete(a, 10).unwrap();
    // Throttled until 100 with deadline 200; a new job at 50 waits for the replenishment.
    s.submit(a, job(1), 50).unwrap();
    assert_eq!(
        s.dispatch(50).unwrap(),
        Decision::Idle {
            wake_at_ns: Some(100)
        }
    );
    assert_eq!(s.head_job(a).unwrap().unwrap().deadline_ns, Some(200));
    let d = run(s.dispatch(100).unwrap());
    assert_eq!((d.deadline_ns, d.slice_ns), (200, 10));
}
