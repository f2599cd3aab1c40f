//! Passwords: the policy (NIST SP 800-63B rev. 4 §3.1.1, ASVS 6.2) and Argon2id hashing with a
//! pepper, run in a bounded pool so that a flood of logins cannot take every core.
//!
//! - Length counts Unicode code points after NFKC normalisation: at least 15 when a password is a
//!   single factor, 8 when it is the first of two (daman never accepts a password alone, so 8
//!   applies to every account today), at most 256. No composition rules, no rotation.
//! - Refused: the 100 000 most common passwords (`data/common-passwords.txt`, provenance in
//!   `data/README.md`), compared with the whole password case-insensitively, also with trailing
//!   digits and punctuation removed; and any password that contains a context word (the fund's
//!   names, the login, the person's CIN, number, names, birth date and phone: [`context_words`])
//!   anywhere, in any case, unless at least [`MIN_OWN_PART`] characters besides them, digits and
//!   punctuation are left ("cnss2025!", "ZT004242!!", "Boukhari1992!" are refused). The reason
//!   is given to the user.
//! - Stored as a PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash`; the pepper (a 32-byte secret
//!   in the key store, never in the database) is Argon2's secret input. A hash made with weaker
//!   parameters than the current ones is redone at the next successful login.

use crate::AuthError;
use argon2::{Algorithm, Argon2, Params, Version};
use domain::{Rule, ValidationError};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Shortest password when it is the only factor.
pub const MIN_SINGLE_FACTOR: usize = 15;
/// Shortest password when a second factor follows.
pub const MIN_WITH_SECOND_FACTOR: usize = 8;
/// Longest password accepted (code points).
pub const MAX_LEN: usize = 256;

/// Words of the service that make a password guessable whatever the user.
pub const CONTEXT_WORDS: &[&str] = &[
    "cnss",
    "daman",
    "damancom",
    "damane",
    "amo",
    "securitesociale",
    "caissenationaledesecuritesociale",
    "ضمان",
    "الضمان",
    "الضمانالاجتماعي",
    "الصندوقالوطنيللضمانالاجتماعي",
];

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

/// How many entries the common-password list has (for the docs and a test).
pub fn common_list_len() -> usize {
    COMMON.len()
}

/// NFKC, as NIST asks, so that the same password typed on two keyboards is the same.
pub fn normalise(password: &str) -> Zeroizing<String> {
    Zeroizing::new(password.nfkc().collect())
}

/// The comparison form: lower case, spaces, dots, dashes and underscores removed.
fn folded(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '.' | '-' | '_' | '\''))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `s` without its trailing digits and punctuation.
fn stem(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation())
}

/// Checks a new password against the policy. `context` holds the words of this account: its
/// login and the person's names. `second_factor` says whether a second factor always follows.
pub fn check_new(
    password: &str,
    context: &[&str],
    second_factor: bool,
) -> Result<(), ValidationError> {
    let pw = normalise(password);
    let len = pw.chars().count();
    let min = if second_factor {
        MIN_WITH_SECOND_FACTOR
    } else {
        MIN_SINGLE_FACTOR
    };
    if len < min {
        return Err(ValidationError::new("password", Rule::TooShort(min)));
    }
    if len > MAX_LEN {
        return Err(ValidationError::new("password", Rule::TooLong(MAX_LEN)));
    }
    let lower = Zeroizing::new(pw.to_lowercase());
    if COMMON.contains(lower.as_str()) || COMMON.contains(stem(&lower)) {
        return Err(ValidationError::new("password", Rule::CommonPassword));
    }
    if !own_part_is_long_enough(&pw, context) {
        return Err(ValidationError::new("password", Rule::ContextPassword));
    }
    Ok(())
}

/// Shortest part of a password that must remain once the words of its context, digits and
/// punctuation are taken out, when it contains any of those words.
pub const MIN_OWN_PART: usize = 8;

/// Whether what is left of `pw` without its context's words (the fund's names and
/// [`context_words`] of `context`, anywhere in it, in any case), digits and punctuation is at
/// least [`MIN_OWN_PART`] long, or it held none of them. A leak gives an attacker the CIN, the
/// names, the birth date and the phone: passwords built of them with a suffix, a prefix or a
/// year are the first guesses.
fn own_part_is_long_enough(pw: &str, context: &[&str]) -> bool {
    let mut rest = Zeroizing::new(folded(pw));
    let mut words: Vec<String> = CONTEXT_WORDS.iter().map(|w| folded(w)).collect();
    words.extend(context_words(context));
    words.retain(|w| w.chars().count() >= 3);
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let mut found = false;
    for w in &words {
        if rest.contains(w.as_str()) {
            found = true;
            *rest = rest.replace(w.as_str(), "");
        }
    }
    if !found {
        return true;
    }
    rest.chars()
        .filter(|c| !c.is_ascii_digit() && !c.is_ascii_punctuation() && !c.is_whitespace())
        .count()
        >= MIN_OWN_PART
}

/// The comparison forms of an account's words: each folded whole, each word of it, the
/// digits of an identifier with letters (a CIN's), a phone number without its country or
/// trunk prefix, and a date (`YYYY-MM-DD`) as its year and as the digit runs people type
/// (`YYYYMMDD`, `DDMMYYYY`, `DDMMYY`).
pub fn context_words(context: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for v in context {
        let f = folded(v);
        if f.is_empty() {
            continue;
        }
        out.push(f.clone());
        out.extend(v.split_whitespace().map(folded).filter(|w| w != &f));
        let digits: String = f.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 4 && digits.len() < f.chars().count() {
            out.push(digits.clone());
        }
        if let Some(d) = digits
            .strip_prefix("212")
            .or_else(|| digits.strip_prefix('0'))
            && d.len() == 9
            && f.chars().all(|c| c.is_ascii_digit() || c == '+')
        {
            out.push(d.to_string());
        }
        let parts: Vec<&str> = v.split('-').collect();
        if let [y, m, d] = parts[..]
            && y.len() == 4
            && m.len() == 2
            && d.len() == 2
            && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
        {
            out.push(y.to_string());
            out.push(format!("{y}{m}{d}"));
            out.push(format!("{d}{m}{y}"));
            out.push(format!("{d}{m}{}", &y[2..]));
        }
    }
    out
}

/// Argon2id cost. The floor is OWASP's and the issue's: 19 MiB, 2 passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub passes: u32,
}

impl HashCost {
    pub const MINIMUM: HashCost = HashCost {
        memory_kib: 19 * 1024,
        passes: 2,
    };

    /// Refuses a cost below [`HashCost::MINIMUM`].
    pub fn checked(self) -> Result<HashCost, AuthError> {
        if self.memory_kib < Self::MINIMUM.memory_kib || self.passes < Self::MINIMUM.passes {
            return Err(AuthError::Config("argon2 cost below 19 MiB / 2 passes"));
        }
        Ok(self)
    }
}

impl Default for HashCost {
    fn default() -> Self {
        Self::MINIMUM
    }
}

/// What a password check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Right password; `rehash` holds a new PHC string when the stored one was made with a lower
    /// cost than the current one.
    Yes {
        rehash: Option<String>,
    },
    No,
}

/// Hashes and verifies passwords on its own threads, `workers` of them, with at most `queue`
/// requests waiting: beyond that a request is refused at once ([`AuthError::Busy`]) instead of
/// queueing. The threads run at a lower scheduling priority (nice 4) than the request handlers,
/// so that a flood of logins slows logins, not everything else: when the cores are busy,
/// handlers get the larger share of them.
#[derive(Clone)]
pub struct PasswordHasher {
    keys: Arc<HashKeys>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Requests hashing or queued.
    waiting: Arc<AtomicUsize>,
    limit: usize,
    /// How long one verification at the current cost takes: no verification answers sooner
    /// (a hash made with an older, cheaper cost would otherwise tell that the account exists).
    floor: std::time::Duration,
}

struct HashKeys {
    pepper: Zeroizing<[u8; 32]>,
    cost: HashCost,
    /// A hash of a random password, verified when the account does not exist, so that an
    /// unknown login costs the same time as a known one.
    decoy: String,
}

type Job = Box<dyn FnOnce(&HashKeys) + Send>;

/// The hashing threads' priority: about nice 4 on Linux (the crate maps 0–99 onto nice 19..-20).
const HASH_THREAD_PRIORITY: u8 = 36;

impl PasswordHasher {
    pub fn new(
        pepper: [u8; 32],
        cost: HashCost,
        workers: usize,
        queue: usize,
        random: &dyn vault::Random,
    ) -> Result<PasswordHasher, AuthError> {
        let cost = cost.checked()?;
        let pepper = Zeroizing::new(pepper);
        let mut decoy_pw = Zeroizing::new([0u8; 24]);
        random.fill(decoy_pw.as_mut())?;
        let mut salt = [0u8; 16];
        random.fill(&mut salt)?;
        let decoy = hash_with(pepper.as_ref(), cost, &crate::hex(decoy_pw.as_ref()), &salt)?;
        let started = std::time::Instant::now();
        verify_with(pepper.as_ref(), &decoy, "");
        let floor = started.elapsed();
        let keys = Arc::new(HashKeys {
            pepper,
            cost,
            decoy,
        });
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let workers = workers.max(1);
        for n in 0..workers {
            let (keys, rx) = (keys.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("daman-hash-{n}"))
                .spawn(move || hash_worker(&keys, &rx))
                .map_err(|_| AuthError::Config("cannot start the hashing threads"))?;
        }
        Ok(PasswordHasher {
            keys,
            jobs: tx,
            waiting: Arc::default(),
            limit: workers + queue,
            floor,
        })
    }

    pub fn cost(&self) -> HashCost {
        self.keys.cost
    }

    /// Whether a new request would be refused now (every worker busy, the queue full): lets a
    /// caller refuse before doing any other work.
    pub fn saturated(&self) -> bool {
        self.waiting.load(Ordering::Acquire) >= self.limit
    }

    /// Runs `f` on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&HashKeys) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AuthError::Busy);
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let waiting = self.waiting.clone();
        let job: Job = Box::new(move |keys| {
            let out = f(keys);
            waiting.fetch_sub(1, Ordering::AcqRel);
            let _ = done.send(out);
        });
        if self.jobs.send(job).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(AuthError::Busy);
        }
        result.await.map_err(|_| AuthError::Busy)
    }

    /// The PHC string of a new password (normalised first), with a fresh 128-bit salt.
    pub async fn hash(
        &self,
        password: &str,
        random: &dyn vault::Random,
    ) -> Result<String, AuthError> {
        let pw = normalise(password);
        let mut salt = [0u8; 16];
        random.fill(&mut salt)?;
        self.run(move |k| hash_with(k.pepper.as_ref(), k.cost, &pw, &salt))
            .await?
    }

    /// Checks `password` against `stored` (a PHC string), or against a decoy hash when there is
    /// no stored hash, so both cases take the same time. A stored hash with a lower cost than
    /// the current one is redone on success, with a fresh salt.
    pub async fn verify(
        &self,
        stored: Option<&str>,
        password: &str,
        random: &dyn vault::Random,
    ) -> Result<Verified, AuthError> {
        let started = std::time::Instant::now();
        let pw = normalise(password);
        let stored = stored.map(str::to_string);
        let mut salt = [0u8; 16];
        random.fill(&mut salt)?;
        let verified = self
            .run(move |k| {
                let (phc, real) = match &stored {
                    Some(s) => (s.as_str(), true),
                    None => (k.decoy.as_str(), false),
                };
                if !verify_with(k.pepper.as_ref(), phc, &pw) || !real {
                    return Ok(Verified::No);
                }
                let rehash = match stored_cost(phc) {
                    Some(c) if c.memory_kib >= k.cost.memory_kib && c.passes >= k.cost.passes => {
                        None
                    }
                    _ => Some(hash_with(k.pepper.as_ref(), k.cost, &pw, &salt)?),
                };
                Ok(Verified::Yes { rehash })
            })
            .await?;
        if let Some(rest) = self.floor.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        verified
    }
}

/// A hashing thread: lowers its own priority, then runs jobs until the hasher is dropped.
fn hash_worker(keys: &HashKeys, jobs: &std::sync::Mutex<std::sync::mpsc::Receiver<Job>>) {
    let lowered = thread_priority::ThreadPriorityValue::try_from(HASH_THREAD_PRIORITY)
        .ok()
        .map(|p| {
            thread_priority::set_current_thread_priority(
                thread_priority::ThreadPriority::Crossplatform(p),
            )
        });
    if !matches!(lowered, Some(Ok(()))) {
        tracing::warn!("password hashing threads run at normal priority");
    }
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(keys),
            Err(_) => return,
        }
    }
}

fn argon2(pepper: &[u8], cost: HashCost) -> Result<Argon2<'_>, AuthError> {
    let params = Params::new(cost.memory_kib, cost.passes, 1, None)
        .map_err(|_| AuthError::Config("argon2 parameters"))?;
    Argon2::new_with_secret(pepper, Algorithm::Argon2id, Version::V0x13, params)
        .map_err(|_| AuthError::Config("argon2 pepper"))
}

fn hash_with(pepper: &[u8], cost: HashCost, pw: &str, salt: &[u8]) -> Result<String, AuthError> {
    use argon2::password_hash::PasswordHasher as _;
    let a = argon2(pepper, cost)?;
    let hash = a
        .hash_password_with_salt(pw.as_bytes(), salt)
        .map_err(|_| AuthError::Config("argon2 hashing"))?;
    Ok(hash.to_string())
}

fn verify_with(pepper: &[u8], phc: &str, pw: &str) -> bool {
    use argon2::password_hash::PasswordVerifier as _;
    let Ok(hash) = argon2::password_hash::phc::PasswordHash::new(phc) else {
        return false;
    };
    let Some(cost) = stored_cost(phc) else {
        return false;
    };
    match argon2(pepper, cost) {
        Ok(a) => a.verify_password(pw.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// The memory and passes written in a stored PHC string.
pub fn stored_cost(phc: &str) -> Option<HashCost> {
    let params = phc.split('$').nth(3)?;
    let (mut m, mut t) = (None, None);
    for kv in params.split(',') {
        match kv.split_once('=')? {
            ("m", v) => m = v.parse().ok(),
            ("t", v) => t = v.parse().ok(),
            _ => {}
        }
    }
    Some(HashCost {
        memory_kib: m?,
        passes: t?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_code_points_after_nfkc() {
        assert!(check_new("kiwi-dune", &[], true).is_ok());
        assert_eq!(
            check_new("short12", &[], true).map_err(|e| e.rule),
            Err(Rule::TooShort(8))
        );
        assert_eq!(
            check_new("kiwi-dune-rock", &[], false).map_err(|e| e.rule),
            Err(Rule::TooShort(15))
        );
        assert!(check_new("kiwi-dune-rocket", &[], false).is_ok());
        // Eight Arabic letters are eight characters.
        assert!(check_new("قمرليلةشتاء", &[], true).is_ok());
        assert!(check_new(&"x".repeat(64), &[], true).is_ok());
        assert_eq!(
            check_new(&"y".repeat(257), &[], true).map_err(|e| e.rule),
            Err(Rule::TooLong(256))
        );
    }

    #[test]
    fn common_and_context_passwords_are_refused_with_the_reason() {
        assert!(common_list_len() >= 100_000);
        for pw in [
            "password",
            "Password1",
            "iloveyou",
            "12345678",
            "qwertyuiop",
        ] {
            assert_eq!(
                check_new(pw, &[], true).map_err(|e| e.rule),
                Err(Rule::CommonPassword),
                "{pw}"
            );
        }
        for pw in [
            "cnss2025!",
            "Damancom",
            "الضمان الاجتماعي",
            "Bennani-Youssef",
            "yb123456789",
        ] {
            assert_eq!(
                check_new(pw, &["Bennani Youssef", "yb123456789"], true).map_err(|e| e.rule),
                Err(Rule::ContextPassword),
                "{pw}"
            );
        }
        // Containing a context word is fine when enough else is there.
        assert!(check_new("cnss is far from my kitchen", &[], true).is_ok());
    }

    /// Passwords an attacker holding the 2025 leak (CIN, names, birth date, phone, number)
    /// tries first: each refused for its context, whatever the case, prefix or suffix.
    #[test]
    fn passwords_built_from_the_leaked_record_are_refused() {
        let person = [
            "ZT004242",
            "100004242",
            "BOUKHARI",
            "Saïd",
            "بوخاري",
            "سعيد",
            "1992-03-14",
            "+212600004242",
        ];
        let refused = [
            "ZT004242!!",
            "zt0042422025",
            "2025ZT004242",
            "Zt004242Zt",
            "004242abc!",
            "Boukhari1992!",
            "boukhari@1992",
            "BOUKHARI-SAID",
            "said.boukhari.1992",
            "Saïd14031992",
            "14-03-92-said",
            "بوخاري1992",
            "سعيد2024!!",
            "777100004242",
            "aa100004242!",
            "0600004242x",
            "x600004242yz",
            "P@ssBoukhari",
        ];
        for pw in refused {
            assert_eq!(
                check_new(pw, &person, true).map_err(|e| e.rule),
                Err(Rule::ContextPassword),
                "{pw}"
            );
        }
        for pw in [
            "Boukhari loves the ocean breeze",
            "correct horse battery staple",
            "mint-lantern-orbit",
        ] {
            assert!(check_new(pw, &person, true).is_ok(), "{pw}");
        }
        assert!(context_words(&["1992-03-14"]).contains(&"140392".to_string()));
        assert!(context_words(&["+212600004242"]).contains(&"600004242".to_string()));
        assert!(context_words(&["ZT004242"]).contains(&"004242".to_string()));
    }

    #[test]
    fn stored_cost_reads_phc_parameters() {
        let c = stored_cost("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA");
        assert_eq!(c, Some(HashCost::MINIMUM));
        assert_eq!(stored_cost("nonsense"), None);
    }

    #[tokio::test]
    async fn hashes_verify_with_the_pepper_and_rehash_when_cost_rises() {
        let r = vault::OsRandom;
        let h = PasswordHasher::new([7; 32], HashCost::MINIMUM, 1, 4, &r).unwrap();
        let phc = h.hash("ｋｉｗｉ dune", &r).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // NFKC: full-width letters are the same password.
        assert_eq!(
            h.verify(Some(&phc), "kiwi dune", &r).await.unwrap(),
            Verified::Yes { rehash: None }
        );
        assert_eq!(
            h.verify(Some(&phc), "kiwi dunes", &r).await.unwrap(),
            Verified::No
        );
        assert_eq!(h.verify(None, "kiwi dune", &r).await.unwrap(), Verified::No);
        // Another pepper: the same string no longer verifies.
        let other = PasswordHasher::new([8; 32], HashCost::MINIMUM, 1, 4, &r).unwrap();
        assert_eq!(
            other.verify(Some(&phc), "kiwi dune", &r).await.unwrap(),
            Verified::No
        );
        // Cost raised: the next success hands back a new hash with the new cost.
        let stronger = HashCost {
            memory_kib: 19 * 1024,
            passes: 3,
        };
        let h3 = PasswordHasher::new([7; 32], stronger, 1, 4, &r).unwrap();
        match h3.verify(Some(&phc), "kiwi dune", &r).await.unwrap() {
            Verified::Yes { rehash: Some(new) } => {
                assert!(new.starts_with("$argon2id$v=19$m=19456,t=3,p=1$"));
                assert!(matches!(
                    h3.verify(Some(&new), "kiwi dune", &r).await.unwrap(),
                    Verified::Yes { rehash: None }
                ));
            }
            other => panic!("{other:?}"),
        }
        assert!(
            HashCost {
                memory_kib: 4096,
                passes: 2
            }
            .checked()
            .is_err()
        );
    }
}
