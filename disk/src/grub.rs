//! GRUB's files on a Corral disk's EFI system partition: the menu that picks a boot slot
//! (`grub.cfg`) and the environment block that holds the choice (`grubenv`). Text only;
//! the build makes GRUB's images (grub-mkimage), the disk writers put these beside them,
//! and the manager rewrites the environment ([`crate::bootenv`]). Each slot carries its
//! own kernel command line ([`SLOT_ENV`]).

use crate::layout::{self, SLOT_A, SLOT_B};

/// Options of the second boot entry: a root shell on the second serial port, for
/// debugging and for the test harness. Choosing it needs the console, from which the
/// command line could be edited anyway, so it grants nothing new.
pub const DEBUG_OPTIONS: &str = "corral.debug_shell=ttyS1";

/// GRUB's directory on the ESP, relative to the partition.
pub const GRUB_DIR: &str = "grub";

/// The size of a GRUB environment block.
pub const GRUBENV_SIZE: usize = 1024;

/// A GRUB environment block (what grub-editenv writes): a header, `name=value` lines,
/// `#` up to 1024 bytes. `None` when the variables do not fit.
pub fn grubenv(vars: &[(&str, &str)]) -> Option<String> {
    let mut env = String::from("# GRUB Environment Block\n");
    for (name, value) in vars {
        env.push_str(&format!("{name}={value}\n"));
    }
    let pad = GRUBENV_SIZE.checked_sub(env.len())?;
    env.push_str(&"#".repeat(pad));
    Some(env)
}

/// A slot's own boot settings, read by the menu from the slot's partition: an
/// environment block with `corral_cmdline`, so a version's kernel command line (and its
/// `panic=`) travels with it while the menu on the ESP stays the same.
pub const SLOT_ENV: &str = "boot.env";

/// The slot's `boot.env` for a kernel command line.
pub fn slot_env(cmdline: &str) -> Option<String> {
    grubenv(&[("corral_cmdline", cmdline)])
}

/// The disk's GRUB menu, the fixed interface between versions: every version boots
/// through it, so it changes only with a new disk. The slot to boot is `corral_slot`
/// (A or B) from the environment block, unless `corral_trial` names a slot on trial:
/// that one boots while `corral_tries` counts down 3, 2, 1, 0, with `corral.trial=N` on
/// its command line; once spent, the trial is dropped, the slot is named in
/// `corral_failed` and `corral_slot` boots again. [`crate::bootenv`] is the other side.
/// The kernel command line is the slot's own ([`SLOT_ENV`]), `cmdline` where the slot
/// has none.
pub fn grub_disk_cfg(cmdline: &str) -> String {
    let a = layout::number(&SLOT_A);
    let b = layout::number(&SLOT_B);
    format!(
        r#"serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set corral_slot=A
set corral_trial=
set corral_tries=
set corral_failed=
if [ -s $prefix/grubenv ]; then
  load_env --file $prefix/grubenv corral_slot corral_trial corral_tries corral_failed
fi
set boot_slot=$corral_slot
set trial_arg=
if [ -n "$corral_trial" ]; then
  if [ "$corral_tries" = 3 ]; then set corral_tries=2
  elif [ "$corral_tries" = 2 ]; then set corral_tries=1
  elif [ "$corral_tries" = 1 ]; then set corral_tries=0
  else set corral_tries=
  fi
  if [ -n "$corral_tries" ]; then
    set boot_slot=$corral_trial
    set trial_arg="corral.trial=$corral_tries"
  else
    set corral_failed=$corral_trial
    set corral_trial=
  fi
  save_env --file $prefix/grubenv corral_trial corral_tries corral_failed
fi
regexp --set=1:disk '^(.*),gpt[0-9]+$' "$root"
if [ "$boot_slot" = B ]; then set slot=($disk,gpt{b}); else set boot_slot=A; set slot=($disk,gpt{a}); fi
set corral_cmdline="{cmdline}"
if [ -f $slot/{SLOT_ENV} ]; then
  load_env --file $slot/{SLOT_ENV} corral_cmdline
fi
menuentry "Corral (slot $boot_slot)" {{
  linux $slot/vmlinuz $corral_cmdline corral.slot=$boot_slot $trial_arg
  initrd $slot/initrd
}}
menuentry "Corral (slot $boot_slot) with a root shell on ttyS1 (debugging)" --hotkey=d {{
  linux $slot/vmlinuz $corral_cmdline corral.slot=$boot_slot $trial_arg {DEBUG_OPTIONS}
  initrd $slot/initrd
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_block_is_exactly_1024_bytes() {
        let env = grubenv(&[("corral_slot", "A"), ("corral_trial", "")]).unwrap();
        assert_eq!(env.len(), GRUBENV_SIZE);
        assert!(env.starts_with("# GRUB Environment Block\ncorral_slot=A\ncorral_trial=\n#"));
        let long = "x".repeat(2000);
        assert!(grubenv(&[("v", &long)]).is_none());
    }

    #[test]
    fn the_menu_boots_the_chosen_slot_with_the_command_line() {
        let cfg = grub_disk_cfg("console=ttyS0");
        assert!(cfg.contains("set corral_cmdline=\"console=ttyS0\"\n"));
        assert!(cfg.contains("load_env --file $slot/boot.env corral_cmdline\n"));
        assert!(
            cfg.contains("linux $slot/vmlinuz $corral_cmdline corral.slot=$boot_slot $trial_arg\n")
        );
        assert!(cfg.contains("set slot=($disk,gpt4)"));
        assert!(cfg.contains("set slot=($disk,gpt3)"));
        assert!(cfg.contains(&format!(
            "corral.slot=$boot_slot $trial_arg {DEBUG_OPTIONS}"
        )));
        // A trial counts down and is then dropped.
        for step in [
            "= 3 ]; then set corral_tries=2",
            "= 1 ]; then set corral_tries=0",
        ] {
            assert!(cfg.contains(step), "{step}");
        }
        assert!(
            cfg.contains("save_env --file $prefix/grubenv corral_trial corral_tries corral_failed")
        );
        assert!(cfg.contains("set corral_failed=$corral_trial\n"));
        assert!(cfg.contains("set trial_arg=\"corral.trial=$corral_tries\""));
    }
}
