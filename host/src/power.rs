//! How a machine is asked to stop, and what each request means. PID 1 and the
//! `poweroff`/`reboot`/`halt` commands share this one table.

use nix::sys::signal::Signal;

/// What the machine does at the end of a shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Poweroff,
    Reboot,
    Halt,
}

impl Action {
    /// The request a signal to PID 1 stands for. These are busybox init's signals
    /// (SIGTERM reboot, SIGUSR1 halt, SIGUSR2 poweroff), so busybox's own `reboot`,
    /// `halt` and `poweroff` applets, which a busybox shell prefers over PATH, agree with
    /// Corral's commands. SIGINT is Ctrl-Alt-Del: reboot. SIGPWR (a UPS daemon's
    /// signal): poweroff.
    pub fn from_signal(signal: Signal) -> Option<Action> {
        match signal {
            Signal::SIGUSR2 | Signal::SIGPWR => Some(Action::Poweroff),
            Signal::SIGTERM | Signal::SIGINT => Some(Action::Reboot),
            Signal::SIGUSR1 => Some(Action::Halt),
            _ => None,
        }
    }

    /// The signal the host commands send to PID 1 for this request.
    pub fn signal(self) -> Signal {
        match self {
            Action::Poweroff => Signal::SIGUSR2,
            Action::Reboot => Signal::SIGTERM,
            Action::Halt => Signal::SIGUSR1,
        }
    }

    /// The request a command name stands for (`/usr/sbin/poweroff` -> Poweroff).
    pub fn from_program(argv0: &str) -> Option<Action> {
        match argv0.rsplit('/').next().unwrap_or(argv0) {
            "poweroff" => Some(Action::Poweroff),
            "reboot" => Some(Action::Reboot),
            "halt" => Some(Action::Halt),
            _ => None,
        }
    }

    pub fn reboot_mode(self) -> nix::sys::reboot::RebootMode {
        use nix::sys::reboot::RebootMode;
        match self {
            Action::Poweroff => RebootMode::RB_POWER_OFF,
            Action::Reboot => RebootMode::RB_AUTOBOOT,
            Action::Halt => RebootMode::RB_HALT_SYSTEM,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::Poweroff => "powering off",
            Action::Reboot => "rebooting",
            Action::Halt => "halting",
        }
    }
}

/// `poweroff`, `reboot`, `halt`: ask PID 1 to stop, or with `force` stop at once (sync,
/// then reboot(2)).
pub fn request(action: Action, force: bool) -> crate::Result<()> {
    if force {
        nix::unistd::sync();
        return nix::sys::reboot::reboot(action.reboot_mode())
            .map(|_| ())
            .map_err(crate::HostError::Reboot);
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(1), action.signal()).map_err(|e| match e {
        nix::Error::EPERM => crate::HostError::StopNotRoot,
        e => crate::HostError::SignalInit(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_signal_maps_back_to_its_action() {
        for action in [Action::Poweroff, Action::Reboot, Action::Halt] {
            assert_eq!(Action::from_signal(action.signal()), Some(action));
        }
    }

    #[test]
    fn command_names_map_to_actions() {
        assert_eq!(
            Action::from_program("/usr/sbin/poweroff"),
            Some(Action::Poweroff)
        );
        assert_eq!(Action::from_program("reboot"), Some(Action::Reboot));
        assert_eq!(Action::from_program("halt"), Some(Action::Halt));
        assert_eq!(Action::from_program("/init"), None);
    }

    #[test]
    fn signals_follow_busybox_init() {
        assert_eq!(Action::from_signal(Signal::SIGTERM), Some(Action::Reboot));
        assert_eq!(Action::from_signal(Signal::SIGUSR2), Some(Action::Poweroff));
        assert_eq!(Action::from_signal(Signal::SIGUSR1), Some(Action::Halt));
        assert_eq!(Action::from_signal(Signal::SIGINT), Some(Action::Reboot));
        assert_eq!(Action::from_signal(Signal::SIGCHLD), None);
    }
}
