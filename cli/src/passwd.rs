//! Reading accounts from an `/etc/passwd` under a given root, so the console set-up works
//! on the image's files and on a test's temporary tree alike.

use std::path::{Path, PathBuf};

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// The home directory, absolute, as written in passwd.
    pub home: PathBuf,
}

/// Finds `name` in the passwd text; `None` if absent or its line is malformed.
pub fn find(passwd: &str, name: &str) -> Option<Account> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[0] != name {
            return None;
        }
        Some(Account {
            name: name.to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: PathBuf::from(f[5]),
        })
    })
}

/// Reads `<root>/etc/passwd` and finds `name`.
pub fn lookup(root: &Path, name: &str) -> std::io::Result<Option<Account>> {
    let text = std::fs::read_to_string(root.join("etc/passwd"))?;
    Ok(find(&text, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_account_and_skips_bad_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\nbroken:x:1\n\
                    corral:x:1100:1100:Corral:/home/corral:/bin/bash\n";
        let a = find(text, "corral").expect("found");
        assert_eq!((a.uid, a.gid), (1100, 1100));
        assert_eq!(a.home, PathBuf::from("/home/corral"));
        assert_eq!(find(text, "broken"), None);
        assert_eq!(find(text, "nobody"), None);
        assert_eq!(find("x:x:notanumber:0::/:/bin/sh\n", "x"), None);
    }
}
