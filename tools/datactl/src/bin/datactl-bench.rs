//! `datactl-bench`: control-plane frames per second and ACK latency percentiles against a
//! running SIS (UNIX socket or TCP), or against the in-process mock guest (`--mock`) to
//! measure the host side alone.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(not(target_os = "none"))]
fn main() {
    std::process::exit(host::main());
}

#[cfg(not(target_os = "none"))]
mod host {
    use clap::Parser;
    use datactl::bench::{run_bench, BenchConfig, FrameKind};
    use datactl::cli::{exit, parse_token};
    use datactl::mock::{MockConfig, MockServer};
    use datactl::transport::{Endpoint, DEFAULT_SOCKET};
    use sis_frame::auth::Secrets;
    use std::path::PathBuf;
    use std::time::Duration;

    /// Options.
    #[derive(Parser, Debug)]
    #[command(
        name = "datactl-bench",
        about = "Measure SIS control-plane frames/s and ACK latency"
    )]
    struct Args {
        /// UNIX socket of the datactl port.
        #[arg(long, default_value = DEFAULT_SOCKET)]
        socket: PathBuf,
        /// TCP HOST:PORT instead of the UNIX socket.
        #[arg(long, conflicts_with = "socket")]
        tcp: Option<String>,
        /// Token (needed for --kind poll/cancel).
        #[arg(long, env = "SIS_TOKEN", value_parser = parse_token, hide_env_values = true)]
        token: Option<u64>,
        /// Frames to measure.
        #[arg(long, default_value_t = 1000)]
        frames: usize,
        /// Warm-up frames (not measured).
        #[arg(long, default_value_t = 50)]
        warmup: usize,
        /// Frames in flight at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4096))]
        window: u64,
        /// Longest wait for one reply (ms).
        #[arg(long = "timeout-ms", default_value_t = 2000)]
        timeout_ms: u64,
        /// Frame to send (default: poll with a token, unsupported without).
        #[arg(long, value_enum)]
        kind: Option<FrameKind>,
        /// Inference id for poll/cancel.
        #[arg(long, default_value_t = 0)]
        infer_id: u32,
        /// Benchmark the in-process mock guest over both UNIX and TCP instead.
        #[arg(long)]
        mock: bool,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    }

    pub fn main() -> i32 {
        let args = Args::parse();
        let kind = args.kind.unwrap_or(if args.token.is_some() || args.mock {
            FrameKind::Poll
        } else {
            FrameKind::Unsupported
        });
        let mk = |endpoint: Endpoint, token: Option<u64>| BenchConfig {
            endpoint,
            token,
            frames: args.frames,
            warmup: args.warmup,
            window: args.window as usize,
            timeout: Duration::from_millis(args.timeout_ms.max(1)),
            kind,
            infer_id: args.infer_id,
        };
        let mut runs: Vec<(String, BenchConfig)> = Vec::new();
        // Keep mock servers alive for the runs.
        let mut _mocks = Vec::new();
        let dir = std::env::temp_dir().join(format!("datactl-bench-{}", std::process::id()));
        if args.mock {
            let secrets = Secrets {
                admin: 0x00a1_0000_0000_0001,
                submit: 0x00b2_0000_0000_0002,
                ctl_key: 0x00c3_0000_0000_0003,
            };
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("datactl-bench: cannot create {}: {e}", dir.display());
                return exit::CONNECTION;
            }
            let unix = MockServer::unix(dir.join("mock.sock"), MockConfig::new(secrets));
            let tcp = MockServer::tcp(MockConfig::new(secrets));
            match (unix, tcp) {
                (Ok(u), Ok(t)) => {
                    runs.push((
                        format!("mock {}", u.endpoint()),
                        mk(u.endpoint().clone(), Some(secrets.submit)),
                    ));
                    runs.push((
                        format!("mock {}", t.endpoint()),
                        mk(t.endpoint().clone(), Some(secrets.submit)),
                    ));
                    _mocks.push(u);
                    _mocks.push(t);
                }
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("datactl-bench: cannot start the mock: {e}");
                    return exit::CONNECTION;
                }
            }
        } else {
            let ep = match &args.tcp {
                Some(a) => Endpoint::Tcp(a.clone()),
                None => Endpoint::Unix(args.socket.clone()),
            };
            runs.push((ep.to_string(), mk(ep, args.token)));
        }
        for (label, cfg) in &runs {
            match run_bench(cfg) {
                Ok(r) => {
                    let label = format!("{label} kind={:?} window={}", cfg.kind, cfg.window);
                    println!(
                        "{}",
                        if args.json {
                            r.json(&label)
                        } else {
                            r.summary(&label)
                        }
                    );
                }
                Err(e) => {
                    eprintln!("datactl-bench: {label}: {e}");
                    return if e.contains("no reply") {
                        exit::TIMEOUT
                    } else {
                        exit::CONNECTION
                    };
                }
            }
        }
        if args.mock {
            drop(_mocks);
            let _ = std::fs::remove_dir_all(&dir);
        }
        exit::OK
    }
}
