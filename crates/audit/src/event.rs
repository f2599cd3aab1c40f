//! An audit event as a leaf of the log: a canonical, versioned byte encoding.
//!
//! The bytes are what the tree hashes, so the same event always encodes the same way and any
//! change to any field, or to its number, changes its leaf hash. Subjects are keyed pseudonyms
//! (never a CIN or a name), so a leaf shown to an auditor carries no personal data.

/// The encoding's version byte.
const V1: u8 = 1;

/// One audit event, as appended to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its number in the log, from 1; its leaf index is `seq - 1`.
    pub seq: u64,
    /// When: microseconds since 1970-01-01T00:00:00Z.
    pub at: i64,
    pub principal_id: Option<i64>,
    pub role: String,
    pub action: String,
    pub purpose: Option<String>,
    /// The subject's keyed pseudonym.
    pub subject: Option<Vec<u8>>,
    /// Bit mask of the personal fields concerned.
    pub fields: i64,
    pub detail: Option<String>,
    pub outcome: String,
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an audit event encoding")]
pub struct Malformed;

/// A length-prefixed byte string. Audit fields are short (a request id is cut to 64
/// characters, a detail is a few counts); a field past 4 GiB would not fit the prefix and is
/// cut to what does, so the encoding stays decodable.
fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(u32::MAX as usize)];
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn opt<T>(out: &mut Vec<u8>, v: Option<T>, f: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            f(out, v);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().map_err(|_| Malformed)?,
        ))
    }
    fn i64(&mut self) -> Result<i64, Malformed> {
        Ok(self.u64()? as i64)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, Malformed> {
        let n = u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| Malformed)?);
        Ok(self.take(n as usize)?.to_vec())
    }
    fn string(&mut self) -> Result<String, Malformed> {
        String::from_utf8(self.bytes()?).map_err(|_| Malformed)
    }
    fn opt<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Malformed>,
    ) -> Result<Option<T>, Malformed> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(f(self)?)),
            _ => Err(Malformed),
        }
    }
}

impl Event {
    /// The leaf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.push(V1);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at.to_be_bytes());
        opt(&mut out, self.principal_id, |o, v| {
            o.extend_from_slice(&v.to_be_bytes())
        });
        bytes(&mut out, self.role.as_bytes());
        bytes(&mut out, self.action.as_bytes());
        opt(&mut out, self.purpose.as_deref(), |o, v| {
            bytes(o, v.as_bytes())
        });
        opt(&mut out, self.subject.as_deref(), bytes);
        out.extend_from_slice(&self.fields.to_be_bytes());
        opt(&mut out, self.detail.as_deref(), |o, v| {
            bytes(o, v.as_bytes())
        });
        bytes(&mut out, self.outcome.as_bytes());
        bytes(&mut out, self.request_id.as_bytes());
        out
    }

    /// The inverse of [`Event::encode`]: exactly one event, nothing after it.
    pub fn decode(b: &[u8]) -> Result<Event, Malformed> {
        let mut r = Reader(b);
        if r.u8()? != V1 {
            return Err(Malformed);
        }
        let e = Event {
            seq: r.u64()?,
            at: r.i64()?,
            principal_id: r.opt(|r| r.i64())?,
            role: r.string()?,
            action: r.string()?,
            purpose: r.opt(|r| r.string())?,
            subject: r.opt(|r| r.bytes())?,
            fields: r.i64()?,
            detail: r.opt(|r| r.string())?,
            outcome: r.string()?,
            request_id: r.string()?,
        };
        if !r.0.is_empty() {
            return Err(Malformed);
        }
        Ok(e)
    }

    /// Its leaf hash in the tree.
    pub fn leaf_hash(&self) -> crate::Hash {
        crate::merkle::leaf_hash(&self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event() -> Event {
        Event {
            seq: 7,
            at: 1_790_000_000,
            principal_id: Some(12),
            role: "agent".into(),
            action: "reveal".into(),
            purpose: Some("registration".into()),
            subject: Some(vec![1, 2, 3]),
            fields: 0b110,
            detail: None,
            outcome: "allow".into(),
            request_id: "r-1".into(),
        }
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let e = event();
        assert_eq!(Event::decode(&e.encode()).unwrap(), e);
        let base = e.leaf_hash();
        type Change = Box<dyn Fn(&mut Event)>;
        let changes: Vec<Change> = vec![
            Box::new(|e| e.seq = 8),
            Box::new(|e| e.at += 1),
            Box::new(|e| e.principal_id = None),
            Box::new(|e| e.role = "agenT".into()),
            Box::new(|e| e.action = "revea".into()),
            Box::new(|e| e.purpose = None),
            Box::new(|e| e.subject = Some(vec![1, 2, 4])),
            Box::new(|e| e.fields = 0b111),
            Box::new(|e| e.detail = Some(String::new())),
            Box::new(|e| e.outcome = "deny".into()),
            Box::new(|e| e.request_id = "r-2".into()),
        ];
        for change in changes {
            let mut x = e.clone();
            change(&mut x);
            assert_ne!(x.leaf_hash(), base);
        }
        let mut long = e.encode();
        long.push(0);
        assert_eq!(Event::decode(&long), Err(Malformed));
        assert_eq!(Event::decode(&[]), Err(Malformed));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Event::decode(&b);
        }

        #[test]
        fn round_trips(seq in any::<u64>(), at in any::<i64>(), p in any::<Option<i64>>(),
                       detail in any::<Option<String>>(), subject in any::<Option<Vec<u8>>>()) {
            let e = Event { seq, at, principal_id: p, detail, subject, ..event() };
            prop_assert_eq!(Event::decode(&e.encode()).unwrap(), e);
        }
    }
}
