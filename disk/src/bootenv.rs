//! The boot state: which slot is good, which one is on trial and how many tries it has
//! left, which trial failed, and what each slot is known to be. It lives in GRUB's
//! environment block on the ESP (`/grub/grubenv`), where GRUB reads it before the kernel
//! starts and counts a trial's tries down itself ([`crate::grub::grub_disk_cfg`]).
//!
//! Every change is one whole block whose variables all sit in its first 512-byte sector;
//! the second sector is padding that never changes. A disk writes a sector whole or not
//! at all, so a power cut during a write leaves the old state or the new one, never a
//! mix of the two. A block that cannot be read (no header, garbage) reads as "slot A is
//! good, no trial", which is also what GRUB does with it; [`BootEnv::parse`] says so.
//! The transitions below are pure: the manager writes their result.

use crate::grub::{grubenv, GRUBENV_SIZE};
use std::fmt;

/// The header of a GRUB environment block.
const HEADER: &str = "# GRUB Environment Block\n";

/// The room the variables have: the block's first sector.
pub const SECTOR_ROOM: usize = 512;

/// How many boots a trial gets before GRUB drops it.
pub const TRIES: u8 = 3;

/// A boot slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    pub fn parse(text: &str) -> Option<Slot> {
        match text {
            "A" => Some(Slot::A),
            "B" => Some(Slot::B),
            _ => None,
        }
    }

    /// The slot's partition in the layout.
    pub fn partition(self) -> crate::layout::Slot {
        match self {
            Slot::A => crate::layout::SLOT_A,
            Slot::B => crate::layout::SLOT_B,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "A",
            Slot::B => "B",
        })
    }
}

/// What a slot is known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    /// Nothing was ever written to it (slot B of a new image), or a write began and
    /// did not finish.
    Empty,
    /// Written and verified, waiting for or during its trial boots.
    Trial,
    /// It booted and came up healthy.
    Good,
    /// Its trial failed.
    Bad,
}

impl SlotState {
    fn parse(text: &str) -> Option<SlotState> {
        Some(match text {
            "empty" => SlotState::Empty,
            "trial" => SlotState::Trial,
            "good" => SlotState::Good,
            "bad" => SlotState::Bad,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            SlotState::Empty => "empty",
            SlotState::Trial => "trial",
            SlotState::Good => "good",
            SlotState::Bad => "bad",
        }
    }
}

/// The boot state in GRUB's environment block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEnv {
    /// `corral_slot`: the slot GRUB boots when there is no trial.
    pub good: Slot,
    /// `corral_trial` and `corral_tries`: a slot on trial and the boots it has left.
    pub trial: Option<(Slot, u8)>,
    /// `corral_failed`: a trial GRUB dropped (tries spent) or the manager cancelled, not
    /// yet recorded by the manager.
    pub failed: Option<Slot>,
    /// `corral_state_a`, `corral_state_b`.
    pub states: [SlotState; 2],
}

impl Default for BootEnv {
    /// A new disk: slot A good, slot B empty.
    fn default() -> BootEnv {
        BootEnv {
            good: Slot::A,
            trial: None,
            failed: None,
            states: [SlotState::Good, SlotState::Empty],
        }
    }
}

/// Why a change of the boot state was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The slot that runs is itself on trial: an upgrade now would write over the only
    /// good slot.
    RunningOnTrial(Slot),
    /// The slot that runs is not the good one (it was picked by hand in GRUB's menu).
    NotTheGoodSlot { running: Slot, good: Slot },
    /// `rollback`: the other slot is not known good.
    OtherNotGood(Slot, SlotState),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::RunningOnTrial(s) => write!(
                f,
                "slot {s}, which is running, is on trial and not yet marked good; wait until \
                 it is (corral os status) before upgrading again"
            ),
            Refusal::NotTheGoodSlot { running, good } => write!(
                f,
                "slot {running} is running but slot {good} is the one marked good; reboot into \
                 slot {good} (or corral os rollback) first"
            ),
            Refusal::OtherNotGood(s, state) => write!(
                f,
                "slot {s} is {} and was never marked good; there is nothing to roll back to",
                state.name()
            ),
        }
    }
}

impl BootEnv {
    /// Reads an environment block (untrusted: any bytes). Unknown variables are ignored,
    /// a variable with a value it cannot have is left at its default; the second value is
    /// whether the block was readable at all.
    pub fn parse(bytes: &[u8]) -> (BootEnv, bool) {
        let mut env = BootEnv::default();
        let Some(body) = bytes.strip_prefix(HEADER.as_bytes()) else {
            return (env, false);
        };
        let body = &body[..body.len().min(GRUBENV_SIZE)];
        let text = String::from_utf8_lossy(body);
        let mut trial = None;
        let mut tries = None;
        for line in text.lines() {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            match name {
                "corral_slot" => env.good = Slot::parse(value).unwrap_or(Slot::A),
                "corral_trial" => trial = Slot::parse(value),
                "corral_tries" => tries = value.parse::<u8>().ok().filter(|t| *t <= TRIES),
                "corral_failed" => env.failed = Slot::parse(value),
                "corral_state_a" => {
                    env.states[0] = SlotState::parse(value).unwrap_or(env.states[0])
                }
                "corral_state_b" => {
                    env.states[1] = SlotState::parse(value).unwrap_or(env.states[1])
                }
                _ => {}
            }
        }
        env.trial = trial.zip(tries);
        // The good slot is good whatever its recorded state says.
        env.states[index(env.good)] = SlotState::Good;
        (env, true)
    }

    /// The block GRUB reads: exactly 1024 bytes, every variable in the first sector.
    pub fn render(&self) -> Vec<u8> {
        let good = self.good.to_string();
        let (trial, tries) = match self.trial {
            Some((s, t)) => (s.to_string(), t.to_string()),
            None => (String::new(), String::new()),
        };
        let failed = self.failed.map(|s| s.to_string()).unwrap_or_default();
        let vars = [
            ("corral_slot", good.as_str()),
            ("corral_trial", trial.as_str()),
            ("corral_tries", tries.as_str()),
            ("corral_failed", failed.as_str()),
            ("corral_state_a", self.states[0].name()),
            ("corral_state_b", self.states[1].name()),
        ];
        // The variables are a few dozen bytes; the block always has room for them.
        grubenv(&vars).map(String::into_bytes).unwrap_or_default()
    }

    pub fn state(&self, slot: Slot) -> SlotState {
        self.states[index(slot)]
    }

    fn set(&mut self, slot: Slot, state: SlotState) {
        self.states[index(slot)] = state;
    }

    /// The slot the next boot starts, as GRUB decides it.
    pub fn next_boot(&self) -> Slot {
        match self.trial {
            Some((slot, _)) => slot,
            None => self.good,
        }
    }

    /// Before an upgrade writes the slot that is not `running`: that slot is empty from
    /// now until [`BootEnv::arm`], so a cut write is never booted. Refused while the
    /// running slot is on trial or is not the good one.
    pub fn begin_write(&self, running: Slot) -> Result<BootEnv, Refusal> {
        if self.trial.map(|(s, _)| s) == Some(running) || self.state(running) == SlotState::Trial {
            return Err(Refusal::RunningOnTrial(running));
        }
        if running != self.good {
            return Err(Refusal::NotTheGoodSlot {
                running,
                good: self.good,
            });
        }
        let mut next = self.clone();
        next.trial = None;
        next.set(running.other(), SlotState::Empty);
        Ok(next)
    }

    /// After the other slot was written and synced: it boots next, on trial, with
    /// [`TRIES`] tries.
    pub fn arm(&self, running: Slot) -> Result<BootEnv, Refusal> {
        let mut next = self.begin_write(running)?;
        let target = running.other();
        next.trial = Some((target, TRIES));
        next.failed = None;
        next.set(target, SlotState::Trial);
        Ok(next)
    }

    /// A trial boot of `running` came up healthy: it becomes the good slot. `None` when
    /// `running` is not on trial (nothing to do).
    pub fn commit(&self, running: Slot) -> Option<BootEnv> {
        if self.state(running) != SlotState::Trial {
            return None;
        }
        let mut next = self.clone();
        next.good = running;
        next.trial = None;
        next.failed = None;
        next.set(running, SlotState::Good);
        Some(next)
    }

    /// A trial boot of `running` did not come up healthy: the trial ends now, and the
    /// next boot is the good slot.
    pub fn cancel(&self, running: Slot) -> Option<BootEnv> {
        if self.state(running) != SlotState::Trial {
            return None;
        }
        let mut next = self.clone();
        next.trial = None;
        next.failed = Some(running);
        next.set(running, SlotState::Bad);
        Some(next)
    }

    /// A failed trial GRUB dropped (or [`BootEnv::cancel`] ended), once recorded: the
    /// slot is bad and the mark is cleared. `None` when there is none.
    pub fn record_failure(&self) -> Option<(Slot, BootEnv)> {
        let failed = self.failed?;
        let mut next = self.clone();
        next.failed = None;
        if next.trial.map(|(s, _)| s) != Some(failed) && failed != next.good {
            next.set(failed, SlotState::Bad);
        }
        Some((failed, next))
    }

    /// `corral os rollback`: the other slot, if it is known good, boots next and stays.
    pub fn rollback(&self, running: Slot) -> Result<BootEnv, Refusal> {
        let other = running.other();
        let state = self.state(other);
        if state != SlotState::Good {
            return Err(Refusal::OtherNotGood(other, state));
        }
        let mut next = self.clone();
        next.good = other;
        next.trial = None;
        Ok(next)
    }
}

/// The slot `corral.slot=` names on a kernel command line (GRUB's menu adds it); `None`
/// on a machine booted without slots (the ISO, `make run`).
pub fn booted_slot(cmdline: &str) -> Option<Slot> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("corral.slot="))
        .next_back()
        .and_then(Slot::parse)
}

/// Whether a kernel command line is a trial boot's (`corral.trial=N`, which GRUB's menu
/// adds while it counts a trial's tries down).
pub fn trial_boot(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|w| w.starts_with("corral.trial="))
}

fn index(slot: Slot) -> usize {
    match slot {
        Slot::A => 0,
        Slot::B => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_names_the_slot_and_the_trial() {
        let line = "console=ttyS0 corral.slot=B corral.trial=2 panic=10";
        assert_eq!(booted_slot(line), Some(Slot::B));
        assert!(trial_boot(line));
        assert_eq!(booted_slot("console=ttyS0"), None);
        assert!(!trial_boot("corral.slot=A"));
        assert_eq!(booted_slot("corral.slot=C"), None);
    }

    #[test]
    fn a_new_disk_reads_slot_a_good_and_b_empty() {
        let env = grubenv(&[("corral_slot", "A")]).unwrap();
        let (read, ok) = BootEnv::parse(env.as_bytes());
        assert!(ok);
        assert_eq!(read, BootEnv::default());
    }

    #[test]
    fn the_block_round_trips_and_keeps_its_variables_in_the_first_sector() {
        let env = BootEnv {
            trial: Some((Slot::B, 2)),
            failed: Some(Slot::A),
            states: [SlotState::Good, SlotState::Trial],
            ..BootEnv::default()
        };
        let bytes = env.render();
        assert_eq!(bytes.len(), GRUBENV_SIZE);
        assert!(bytes[SECTOR_ROOM..].iter().all(|b| *b == b'#'));
        assert_eq!(BootEnv::parse(&bytes), (env, true));
    }

    #[test]
    fn garbage_reads_as_grub_reads_it() {
        for junk in [
            &b""[..],
            b"\0\0\0\0",
            b"# GRUB Environment Block\ncorral_slot=C\n",
        ] {
            let (env, _) = BootEnv::parse(junk);
            assert_eq!(env.good, Slot::A);
            assert_eq!(env.trial, None);
        }
        assert!(!BootEnv::parse(b"nonsense").1);
        // A trial without a count (or a count past the tries) is no trial.
        let (env, _) =
            BootEnv::parse(b"# GRUB Environment Block\ncorral_trial=B\ncorral_tries=9\n");
        assert_eq!(env.trial, None);
    }

    #[test]
    fn an_upgrade_arms_one_trial_of_the_other_slot() {
        let env = BootEnv::default();
        let writing = env.begin_write(Slot::A).unwrap();
        assert_eq!(writing.state(Slot::B), SlotState::Empty);
        assert_eq!(writing.next_boot(), Slot::A);
        let armed = env.arm(Slot::A).unwrap();
        assert_eq!(armed.trial, Some((Slot::B, TRIES)));
        assert_eq!(armed.next_boot(), Slot::B);
        assert_eq!(armed.good, Slot::A);
        // The trial boot comes up healthy.
        let good = armed.commit(Slot::B).unwrap();
        assert_eq!((good.good, good.trial), (Slot::B, None));
        assert_eq!(good.states, [SlotState::Good, SlotState::Good]);
        assert!(good.commit(Slot::B).is_none());
        // And the old slot can be returned to.
        let back = good.rollback(Slot::B).unwrap();
        assert_eq!(back.next_boot(), Slot::A);
    }

    #[test]
    fn an_upgrade_is_refused_from_a_slot_on_trial_or_not_the_good_one() {
        let armed = BootEnv::default().arm(Slot::A).unwrap();
        assert_eq!(armed.arm(Slot::B), Err(Refusal::RunningOnTrial(Slot::B)));
        let env = BootEnv::default();
        assert_eq!(
            env.arm(Slot::B),
            Err(Refusal::NotTheGoodSlot {
                running: Slot::B,
                good: Slot::A
            })
        );
    }

    #[test]
    fn an_unhealthy_trial_is_cancelled_and_recorded_bad() {
        let armed = BootEnv::default().arm(Slot::A).unwrap();
        let cancelled = armed.cancel(Slot::B).unwrap();
        assert_eq!(cancelled.next_boot(), Slot::A);
        assert_eq!(cancelled.state(Slot::B), SlotState::Bad);
        let (failed, recorded) = cancelled.record_failure().unwrap();
        assert_eq!(failed, Slot::B);
        assert_eq!(recorded.failed, None);
        assert_eq!(recorded.state(Slot::B), SlotState::Bad);
        assert!(recorded.record_failure().is_none());
        // A bad slot is nothing to roll back to.
        assert_eq!(
            recorded.rollback(Slot::A),
            Err(Refusal::OtherNotGood(Slot::B, SlotState::Bad))
        );
    }

    #[test]
    fn a_trial_grub_dropped_is_recorded_bad() {
        // What GRUB leaves after the third try: the trial cleared, the slot named failed.
        let text = "# GRUB Environment Block\ncorral_slot=A\ncorral_trial=\ncorral_tries=\n\
                    corral_failed=B\ncorral_state_a=good\ncorral_state_b=trial\n";
        let (env, _) = BootEnv::parse(text.as_bytes());
        assert_eq!(env.next_boot(), Slot::A);
        let (failed, next) = env.record_failure().unwrap();
        assert_eq!(failed, Slot::B);
        assert_eq!(next.state(Slot::B), SlotState::Bad);
    }

    #[test]
    fn a_write_cut_at_any_byte_of_the_first_sector_never_boots_an_untried_slot() {
        // Slot B was written and armed; a cut write of the armed block leaves a prefix
        // of the new sector over the old one. Whatever GRUB then reads boots A (the old
        // good slot) or B on trial, never B as good.
        let old = BootEnv::default().begin_write(Slot::A).unwrap().render();
        let new = BootEnv::default().arm(Slot::A).unwrap().render();
        for cut in 0..SECTOR_ROOM {
            let mut torn = new[..cut].to_vec();
            torn.extend_from_slice(&old[cut..]);
            let (env, _) = BootEnv::parse(&torn);
            assert_eq!(env.good, Slot::A, "cut at {cut}");
        }
    }
}
