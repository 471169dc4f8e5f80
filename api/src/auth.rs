//! Who is calling, over TCP: bearer tokens mapped to named identities, in
//! the format of kube-apiserver's static token file (`--token-auth-file`):
//! one `token,user,uid[,"group1,group2"]` per line. The identity is what
//! the write path records as a commit's author.
//!
//! Must not touch: the store or the network; it only reads the file's text
//! and answers lookups.

use subtle::ConstantTimeEq;

/// A caller the tokens file names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The user name (`grace`).
    pub user: String,
    /// The user's uid: an e-mail address, by this project's convention,
    /// which commits record.
    pub uid: String,
    /// The groups.
    pub groups: Vec<String>,
}

/// The group whose members may read and not write: kubectl's `get`,
/// `logs`, `describe` and the dashboard's pages, but no commit, exec or
/// port-forward (Kubernetes' `view` role, as a group of the tokens file).
pub const READ_ONLY_GROUP: &str = "driftless:view";

/// The group of node agents' tokens (`system:node:<name>`), as in
/// Kubernetes: they write their own Node and Lease, and nothing else.
pub const NODES_GROUP: &str = "system:nodes";

impl Caller {
    /// The node this caller is the agent of, if it is one.
    pub fn node(&self) -> Option<&str> {
        if self.groups.iter().any(|g| g == NODES_GROUP) { self.user.strip_prefix("system:node:") } else { None }
    }

    /// Whether the caller may change anything (commit, exec, forward).
    pub fn may_write(&self) -> bool {
        !self.groups.iter().any(|g| g == READ_ONLY_GROUP)
    }

    /// The commit author for this caller: `user <uid>` when the uid is an
    /// e-mail address, else `user <user@driftless.local>`.
    pub fn author(&self) -> (String, String) {
        let email = if self.uid.contains('@') { self.uid.clone() } else { format!("{}@driftless.local", self.user) };
        (self.user.clone(), email)
    }
}

/// The tokens the TCP listener accepts.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    entries: Vec<(String, Caller)>,
}

/// A line of a tokens file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct TokensError {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// Splits one CSV line: commas separate fields, a field in double quotes
/// may hold commas (the groups).
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().expect("one field at least").push(c),
        }
    }
    out.into_iter().map(|f| f.trim().to_owned()).collect()
}

impl Tokens {
    /// Reads a tokens file. A file holding one bare token (no comma, the
    /// older `--token-file` form) names the user `admin`.
    pub fn parse(text: &str) -> Result<Tokens, TokensError> {
        let mut entries = Vec::new();
        let lines: Vec<(usize, &str)> =
            text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#')).collect();
        if let [(_, only)] = lines.as_slice()
            && !only.contains(',')
        {
            let caller = Caller { user: "admin".into(), uid: "admin".into(), groups: vec!["system:masters".into()] };
            return Ok(Tokens { entries: vec![((*only).to_owned(), caller)] });
        }
        for (line, text) in lines {
            let f = fields(text);
            let (Some(token), Some(user), Some(uid)) = (f.first(), f.get(1), f.get(2)) else {
                return Err(TokensError { line, why: "expected token,user,uid[,\"group1,group2\"]".into() });
            };
            if token.len() < 16 {
                return Err(TokensError { line, why: format!("the token of {user} is shorter than 16 characters") });
            }
            if user.is_empty() {
                return Err(TokensError { line, why: "no user name".into() });
            }
            let groups = f.get(3).map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned).collect()).unwrap_or_default();
            entries.push((token.clone(), Caller { user: user.clone(), uid: uid.clone(), groups }));
        }
        if entries.is_empty() {
            return Err(TokensError { line: 1, why: "no tokens".into() });
        }
        Ok(Tokens { entries })
    }

    /// The caller presenting `token`. Every entry is compared, each in
    /// constant time, so the time taken says nothing about which token
    /// came close.
    pub fn caller(&self, token: &str) -> Option<&Caller> {
        let mut found = None;
        for (want, caller) in &self.entries {
            if bool::from(want.as_bytes().ct_eq(token.as_bytes())) && found.is_none() {
                found = Some(caller);
            }
        }
        found
    }

    /// One token, of `caller`.
    pub fn one(token: &str, caller: Caller) -> Tokens {
        Tokens { entries: vec![(token.to_owned(), caller)] }
    }

    /// The token of `user` (for `driftless kubeconfig`).
    pub fn token_of(&self, user: &str) -> Option<&str> {
        self.entries.iter().find(|(_, c)| c.user == user).map(|(t, _)| t.as_str())
    }

    /// The first user (the one `kubeconfig` uses by default).
    pub fn first_user(&self) -> Option<&str> {
        self.entries.first().map(|(_, c)| c.user.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kube_apiserver_token_file_maps_tokens_to_callers() {
        let tokens = Tokens::parse(
            "# who may use the API\n\
             31ada4fd-adec-460c-809a-9e56ceb75269,grace,grace@example.invalid,\"devs,ops\"\n\
             0123456789abcdef0123,ci,ci-bot\n",
        )
        .unwrap();
        let grace = tokens.caller("31ada4fd-adec-460c-809a-9e56ceb75269").unwrap();
        assert_eq!(grace.groups, ["devs", "ops"]);
        assert_eq!(grace.author(), ("grace".to_owned(), "grace@example.invalid".to_owned()));
        assert_eq!(tokens.caller("0123456789abcdef0123").unwrap().author(), ("ci".to_owned(), "ci@driftless.local".to_owned()));
        assert!(tokens.caller("0123456789abcdef012").is_none() && tokens.caller("").is_none());
        assert_eq!(tokens.token_of("ci"), Some("0123456789abcdef0123"));
        assert_eq!(tokens.first_user(), Some("grace"));
    }

    #[test]
    fn a_bare_token_is_the_admin_and_bad_lines_say_where() {
        let tokens = Tokens::parse("s3cret\n").unwrap();
        assert_eq!(tokens.caller("s3cret").unwrap().user, "admin");
        let error = Tokens::parse("0123456789abcdef0123,ci,ci\nshort,x,y\n").unwrap_err();
        assert_eq!(error.to_string(), "line 2: the token of x is shorter than 16 characters");
        assert_eq!(Tokens::parse("0123456789abcdef0123\nnext\n").unwrap_err().line, 1);
    }
}
