//! What each signal does to `live` and `analyze`.
//!
//! SIGTERM and SIGINT ask for a clean stop: read no further, close every open
//! flow, write the final stats and the summary. SIGTERM never forces an exit,
//! however often it comes: coreutils' `timeout`, supervisors that signal a
//! process group, shells that forward traps and container runtimes deliver
//! one request several times, and taking the second copy for "exit now"
//! would lose every open flow. A second SIGINT is a person at a terminal
//! insisting, and forces an exit; but `timeout -s INT` and a Ctrl-C that a
//! wrapper also relays deliver one SIGINT twice at once, so a SIGINT within
//! [`DUPLICATE`] of the first stop signal counts as a copy. SIGQUIT forces
//! an exit. A stop that outlasts `--stop-timeout` is forced the same way.
//!
//! A forced exit shuts the writer's gate ([`WriteGate`]) so that the events
//! already written reach the output as whole lines, waits at most
//! [`FLUSH_GRACE`] for that, and exits without running anything else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use signal_hook::low_level::{exit, signal_name};

use portmatrix::pipeline::{Stop, WriteGate};

use super::exit::{Exit, BY_SIGINT, BY_SIGQUIT, BY_SIGTERM};

/// A SIGINT this soon after the first stop signal is a copy of it.
pub const DUPLICATE: Duration = Duration::from_millis(500);
/// The longest a forced exit waits for the events written to be flushed.
const FLUSH_GRACE: Duration = Duration::from_secs(1);

/// How a run reacts to signals, from [`install`] until dropped (which
/// also disarms the `--stop-timeout` watchdog: the stop finished).
pub struct Handling {
    handle: Handle,
    _disarm: Sender<()>,
}

impl Drop for Handling {
    fn drop(&mut self) {
        // The signal thread ends; a signal from now on is ignored.
        self.handle.close();
    }
}

/// What the signals act on.
pub struct Wiring<'a> {
    pub stop: &'a Stop,
    /// Set on SIGHUP (`live -o FILE`: reopen it); without it SIGHUP keeps its default.
    pub hangup: Option<&'a Arc<AtomicBool>>,
    pub stop_timeout: Duration,
    /// No "stopping" line on stderr.
    pub quiet: bool,
}

/// Handle SIGTERM, SIGINT, SIGQUIT (and SIGHUP with `hangup`) on a thread of
/// their own until the returned [`Handling`] is dropped.
pub fn install(wiring: Wiring<'_>) -> std::io::Result<Handling> {
    let mut kinds = vec![SIGTERM, SIGINT, SIGQUIT];
    if wiring.hangup.is_some() {
        kinds.push(SIGHUP);
    }
    let mut signals = Signals::new(&kinds)?;
    let handle = signals.handle();
    let (disarm, disarmed) = mpsc::channel();
    let stop = wiring.stop.clone();
    let hangup = wiring.hangup.cloned();
    let (timeout, quiet) = (wiring.stop_timeout, wiring.quiet);
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut watchdog = Some(disarmed);
            // When the first stop signal came.
            let mut first: Option<Instant> = None;
            for signal in signals.forever() {
                let name = signal_name(signal).unwrap_or("a signal");
                match signal {
                    SIGHUP => {
                        if let Some(flag) = &hangup {
                            flag.store(true, Ordering::Relaxed);
                        }
                    }
                    SIGQUIT => force(stop.gate(), "SIGQUIT", BY_SIGQUIT),
                    SIGINT if first.is_some_and(|t| t.elapsed() >= DUPLICATE) => {
                        force(stop.gate(), "a second SIGINT", BY_SIGINT)
                    }
                    // SIGTERM at any time, and the first SIGINT (or its copies).
                    _ if first.is_some() => {}
                    _ => {
                        first = Some(Instant::now());
                        stop.request(name);
                        if let Some(disarmed) = watchdog.take() {
                            let gate = stop.gate().clone();
                            thread::spawn(move || guard(&disarmed, &gate, timeout));
                        }
                        if !quiet {
                            portmatrix::diag!(
                                "portmatrix: {name}: stopping (closing the open flows, writing the \
final stats; at most {} s, --stop-timeout)",
                                timeout.as_secs_f64()
                            );
                        }
                    }
                }
            }
        })?;
    Ok(Handling {
        handle,
        _disarm: disarm,
    })
}

/// The exit of an analysis a stop signal interrupted: 128 + the
/// signal's number, as a shell reports a process the signal ended (130 for
/// SIGINT, 143 for SIGTERM), once everything read is reported.
pub fn interrupted(signal: &str) -> Exit {
    [SIGINT, SIGTERM]
        .into_iter()
        .find(|&s| signal_name(s) == Some(signal))
        .map_or(BY_SIGTERM, |s| Exit::Interrupted(s as u8))
}

/// For the thread that would write the final events once the writer's gate
/// is shut: a forced exit is under way and decides the exit code.
pub fn await_forced_exit() -> ! {
    loop {
        thread::park();
    }
}

/// The `--stop-timeout` watchdog: unless the run ends (disarming it) within
/// `timeout`, say so and exit with what was written.
fn guard(disarmed: &Receiver<()>, gate: &WriteGate, timeout: Duration) {
    if let Err(RecvTimeoutError::Timeout) = disarmed.recv_timeout(timeout) {
        let why = format!(
            "the stop took longer than {} s (--stop-timeout)",
            timeout.as_secs_f64()
        );
        force(gate, &why, Exit::OutputFailed);
    }
}

/// Exit now with `exit`'s code, keeping what the writer wrote (see the
/// module documentation). Exits even if stderr blocks. (`ExitCode` cannot
/// be returned from here: the other threads are still running.)
fn force(gate: &WriteGate, why: &str, exit_with: Exit) -> ! {
    let code = i32::from(exit_with.code());
    gate.shut();
    let deadline = Instant::now() + FLUSH_GRACE;
    thread::spawn(move || {
        thread::sleep(FLUSH_GRACE);
        exit(code)
    });
    portmatrix::diag!(
        "portmatrix: {why}: exiting at once with code {code}; the events written so far are kept, \
the flows still open and the final stats are not written"
    );
    while !gate.is_flushed() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    exit(code)
}
