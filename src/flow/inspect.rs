//! A flow's first payload packets: what protocol it carries, whether that
//! contradicts its rules, and whether a request or response shows that the
//! ends were told apart wrongly.

use super::{Direction, Flow};
use crate::classify::{AppCheck, Classifier, FlowQuery};
use crate::decode::{AppGuess, AppSeen, RtpFollow, RtpMark, SenderRole};
use crate::verdict::Verdict;

/// Payload packets of a flow that are looked at: enough to get past a
/// handshake's empty segments and a banner, and for RTP to see a second
/// packet of the same direction between the other side's; few enough to
/// cost nothing.
pub const INSPECT_PACKETS: u8 = 6;

/// What a flow keeps while its payload is inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inspection {
    /// Payload packets still to look at.
    budget: u8,
    /// Packets seen so far that went against the rules' protocol.
    doubts: u8,
    /// The first RTP-shaped packet's mark, and whether the client sent it.
    rtp: Option<(RtpMark, bool)>,
}

impl Inspection {
    pub(super) const NEW: Inspection = Inspection {
        budget: INSPECT_PACKETS,
        doubts: 0,
        rtp: None,
    };

    pub(super) const DONE: Inspection = Inspection {
        budget: 0,
        doubts: 0,
        rtp: None,
    };

    pub(super) fn wants_more(&self) -> bool {
        self.budget > 0
    }
}

/// What looking at one more packet did to the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing to report now.
    Quiet,
    /// The flow was documented and no longer is (`protocol_mismatch`, or
    /// turned round onto a port the matrix does not document): alert now.
    Flagged,
}

/// Look at one more packet's payload. `from_client`: the packet's sender is
/// the flow's client.
///
/// The payload may show that the ends were told apart wrongly (a response
/// from the side taken for the client): while no alert has been written for
/// the flow and only the ports or the heuristic had decided, the flow is
/// turned round and classified again.
///
/// A named protocol against the rules (HTTP where SIP is documented) is clear
/// at once; unrecognised bytes or plain text against them (in the RTP
/// ranges, where TLS is documented) must come twice before any packet fits,
/// so that one keep-alive or probe ahead of the real stream is not enough.
pub(super) fn inspect(
    flow: &mut Flow,
    seen: AppSeen,
    from_client: bool,
    classifier: &Classifier,
) -> Outcome {
    flow.inspection.budget = flow.inspection.budget.saturating_sub(1);
    let mut from_client = from_client;
    if contradicts_roles(flow, seen, from_client) {
        turn_round(flow, classifier);
        from_client = !from_client;
        if flow.verdict != Verdict::Documented {
            flow.inspection = Inspection::DONE;
            return Outcome::Flagged;
        }
    }
    let guess = follow_rtp(&mut flow.inspection, seen, from_client);
    let better = match flow.app_seen {
        None => true,
        Some(AppGuess::Unknown) => guess != AppGuess::Unknown,
        Some(AppGuess::Text) => guess.is_named(),
        Some(_) => false,
    };
    if better {
        // One RTP-shaped packet is payload not (yet) recognised.
        flow.app_seen = Some(match guess {
            AppGuess::MaybeRtp => AppGuess::Unknown,
            g => g,
        });
    }
    let contradicted = match classifier.app_expectation(flow.decision).check(guess) {
        AppCheck::Fits => {
            flow.inspection.budget = 0;
            false
        }
        AppCheck::Contradicts => {
            flow.inspection.doubts += 1;
            guess.is_named() || flow.inspection.doubts >= 2
        }
        AppCheck::Undecided => {
            if guess.is_named() {
                flow.inspection.budget = 0;
            }
            false
        }
    };
    if !contradicted {
        return Outcome::Quiet;
    }
    flow.inspection.budget = 0;
    if flow.verdict != Verdict::Documented {
        return Outcome::Quiet;
    }
    flow.judge(Verdict::ProtocolMismatch, flow.decision, classifier);
    Outcome::Flagged
}

/// The payload's request or response came from the side taken for the
/// other, and the flow may still change its mind: nothing was alerted yet
/// and only ports or the heuristic had decided.
fn contradicts_roles(flow: &Flow, seen: AppSeen, from_client: bool) -> bool {
    let wrong = match seen.decisive_role() {
        SenderRole::Client => !from_client,
        SenderRole::Server => from_client,
        SenderRole::Unknown => false,
    };
    wrong
        && !flow.resumed
        && flow.verdict == Verdict::Documented
        && matches!(flow.direction, Direction::Matrix | Direction::Heuristic)
}

/// Swap client and server, with what was counted for each, and classify the
/// flow again for its real listener.
fn turn_round(flow: &mut Flow, classifier: &Classifier) {
    std::mem::swap(&mut flow.client, &mut flow.server);
    std::mem::swap(&mut flow.pkts_toserver, &mut flow.pkts_toclient);
    std::mem::swap(&mut flow.bytes_toserver, &mut flow.bytes_toclient);
    std::mem::swap(&mut flow.flags_toserver, &mut flow.flags_toclient);
    std::mem::swap(&mut flow.fin_from_client, &mut flow.fin_from_server);
    let c = classifier.classify(FlowQuery {
        transport: flow.transport,
        port: flow.server.port,
        multicast: false,
        same_host: flow.client.ip == flow.server.ip,
        client: flow.client.ip,
        server: flow.server.ip,
        vlan: flow.vlan,
    });
    flow.judge(c.verdict, c.decision, classifier);
    flow.direction = Direction::Payload;
    flow.inspection.doubts = 0;
    flow.inspection.rtp = flow.inspection.rtp.map(|(mark, client)| (mark, !client));
}

/// What an RTP-shaped packet turns out to be, against the first one of the
/// same direction: RTP once the stream holds together, `Unknown` when it
/// breaks (then it is compared from this packet on), still `MaybeRtp` while
/// there is nothing to compare with.
fn follow_rtp(inspection: &mut Inspection, seen: AppSeen, from_client: bool) -> AppGuess {
    if seen.guess != AppGuess::MaybeRtp {
        return seen.guess;
    }
    match inspection.rtp {
        Some((first, client)) if client == from_client => match first.followed_by(seen.rtp) {
            RtpFollow::Continues => AppGuess::Rtp,
            RtpFollow::Repeats => AppGuess::MaybeRtp,
            RtpFollow::Breaks => {
                inspection.rtp = Some((seen.rtp, from_client));
                AppGuess::Unknown
            }
        },
        Some(_) => AppGuess::MaybeRtp,
        None => {
            inspection.rtp = Some((seen.rtp, from_client));
            AppGuess::MaybeRtp
        }
    }
}
