//! The ledger's vocabulary: every account the fund keeps and every kind of movement between
//! them, and the rules that build balanced entries. Pure: the store keeps the entries, the
//! `contributions` and `ledger` crates post them.
//!
//! An entry is a list of postings whose amounts sum to zero (debit > 0, credit < 0). Entries
//! are only ever appended; a mistake is corrected by a reversal.

use crate::error::{Rule, ValidationError};
use crate::money::Centimes;
use crate::params::Branch;
use serde::{Serialize, Serializer};
use std::fmt;

/// Whose share of a branch's contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Share {
    Employer,
    Employee,
}

/// Every account of the ledger. There is no other: the store cannot be handed an account it
/// does not know, and an unknown name read back from it is corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// What employers owe the fund: debited by what they declare and by surcharges, credited
    /// by what they pay.
    Receivable,
    /// The fund's bank account: debited by the payments received.
    Bank,
    /// Late-payment surcharges charged to employers.
    Surcharge,
    /// Contributions declared and not yet allocated to a branch. The transaction that accepts
    /// declarations allocates them, so it is zero after every transaction.
    Declared,
    /// A branch's contributions: the employer's or the employee's share.
    Contribution(Branch, Share),
}

impl Account {
    /// Every account, in a fixed order.
    pub const ALL: [Account; 16] = {
        let mut all = [Account::Receivable; 16];
        all[1] = Account::Bank;
        all[2] = Account::Surcharge;
        all[3] = Account::Declared;
        let mut b = 0;
        while b < Branch::ALL.len() {
            all[4 + 2 * b] = Account::Contribution(Branch::ALL[b], Share::Employer);
            all[5 + 2 * b] = Account::Contribution(Branch::ALL[b], Share::Employee);
            b += 1;
        }
        all
    };

    /// The account's name in storage and reports (`receivable`,
    /// `contribution:long_term:employee`).
    pub fn name(self) -> &'static str {
        use Branch as B;
        use Share::{Employee as Ee, Employer as Er};
        match self {
            Account::Receivable => "receivable",
            Account::Bank => "bank",
            Account::Surcharge => "surcharge",
            Account::Declared => "contribution:declared",
            Account::Contribution(B::FamilyAllowances, Er) => {
                "contribution:family_allowances:employer"
            }
            Account::Contribution(B::FamilyAllowances, Ee) => {
                "contribution:family_allowances:employee"
            }
            Account::Contribution(B::ShortTerm, Er) => "contribution:short_term:employer",
            Account::Contribution(B::ShortTerm, Ee) => "contribution:short_term:employee",
            Account::Contribution(B::LongTerm, Er) => "contribution:long_term:employer",
            Account::Contribution(B::LongTerm, Ee) => "contribution:long_term:employee",
            Account::Contribution(B::AmoBase, Er) => "contribution:amo_base:employer",
            Account::Contribution(B::AmoBase, Ee) => "contribution:amo_base:employee",
            Account::Contribution(B::AmoSolidarity, Er) => "contribution:amo_solidarity:employer",
            Account::Contribution(B::AmoSolidarity, Ee) => "contribution:amo_solidarity:employee",
            Account::Contribution(B::VocationalTraining, Er) => {
                "contribution:vocational_training:employer"
            }
            Account::Contribution(B::VocationalTraining, Ee) => {
                "contribution:vocational_training:employee"
            }
        }
    }

    /// The account of a name, if it is one.
    pub fn parse(name: &str) -> Option<Account> {
        Account::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Why a movement exists: every kind of entry the ledger holds. An entry's idempotency key
/// starts with its code ([`EntryCode::key`]), so the same movement is never posted twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryCode {
    /// An accepted declaration: the employer owes its contributions (receivable debited,
    /// `contribution:declared` credited).
    Declaration,
    /// A transaction's declarations allocated to the branches, per period (the whole fund's).
    Allocation,
    /// A rectified declaration's entry, reversed.
    Reversal,
    /// A payment received from an employer (bank debited, receivable credited).
    Payment,
    /// A late-payment surcharge (receivable debited, surcharge credited).
    Surcharge,
}

impl EntryCode {
    pub const ALL: [EntryCode; 5] = [
        EntryCode::Declaration,
        EntryCode::Allocation,
        EntryCode::Reversal,
        EntryCode::Payment,
        EntryCode::Surcharge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryCode::Declaration => "declaration",
            EntryCode::Allocation => "allocation",
            EntryCode::Reversal => "reversal",
            EntryCode::Payment => "payment",
            EntryCode::Surcharge => "surcharge",
        }
    }

    pub fn parse(s: &str) -> Option<EntryCode> {
        EntryCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The idempotency key of the movement of this kind that `what` names (a declaration id,
    /// a bank reference…): `<code>:<what>`.
    pub fn key(self, what: impl fmt::Display) -> String {
        format!("{}:{what}", self.as_str())
    }
}

/// One line of an entry: an amount on an account (debit > 0, credit < 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    pub amount: Centimes,
}

impl Posting {
    pub fn new(account: Account, amount: Centimes) -> Posting {
        Posting { account, amount }
    }

    /// The same amount on the other side.
    pub fn reversed(self) -> Result<Posting, LedgerError> {
        Ok(Posting {
            account: self.account,
            amount: negate(self.amount)?,
        })
    }
}

/// What building an entry can fail with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A sum or a negation does not fit 64 bits.
    #[error("amount overflow")]
    Overflow,
    /// A declaration whose shares were allocated has none stored.
    #[error("branch shares missing")]
    SharesMissing,
    /// Stored branch shares that are not 12 numbers.
    #[error("branch shares corrupt")]
    SharesCorrupt,
}

impl From<LedgerError> for ValidationError {
    fn from(_: LedgerError) -> Self {
        ValidationError::new("amount", Rule::Overflow)
    }
}

fn negate(c: Centimes) -> Result<Centimes, LedgerError> {
    c.0.checked_neg().map(Centimes).ok_or(LedgerError::Overflow)
}

/// An entry that balances by construction: one account debited with the sum of the credits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    pub debit: Account,
    /// The credits: negative amounts. Zero credits are left out of the postings.
    pub credits: Vec<Posting>,
}

impl Journal {
    /// The postings of `debit` debited with `amount` and `credit` credited with it.
    pub fn transfer(
        debit: Account,
        credit: Account,
        amount: Centimes,
    ) -> Result<Vec<Posting>, LedgerError> {
        Journal {
            debit,
            credits: vec![Posting::new(credit, negate(amount)?)],
        }
        .postings()
    }

    /// The debit first, then every non-zero credit; they sum to zero.
    pub fn postings(self) -> Result<Vec<Posting>, LedgerError> {
        let mut total = Centimes::ZERO;
        for c in &self.credits {
            total = total.checked_add(c.amount).ok_or(LedgerError::Overflow)?;
        }
        let mut p = Vec::with_capacity(1 + self.credits.len());
        p.push(Posting::new(self.debit, negate(total)?));
        p.extend(
            self.credits
                .into_iter()
                .filter(|c| c.amount != Centimes::ZERO),
        );
        Ok(p)
    }
}

/// One branch's two shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shares {
    pub employer: Centimes,
    pub employee: Centimes,
}

/// The employer and employee shares of every branch, in [`Branch::ALL`] order: what a
/// declaration owes each branch, or what a transaction allocates to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BranchShares([Shares; 6]);

impl BranchShares {
    pub fn new(shares: [Shares; 6]) -> BranchShares {
        BranchShares(shares)
    }

    /// Each branch with its shares, in [`Branch::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Branch, Shares)> + '_ {
        Branch::ALL.into_iter().zip(self.0.iter().copied())
    }

    /// Adds a line's shares of `branch`.
    pub fn add(
        &mut self,
        branch: Branch,
        employer: Centimes,
        employee: Centimes,
    ) -> Result<(), LedgerError> {
        let s = &mut self.0[branch.index()];
        s.employer = s
            .employer
            .checked_add(employer)
            .ok_or(LedgerError::Overflow)?;
        s.employee = s
            .employee
            .checked_add(employee)
            .ok_or(LedgerError::Overflow)?;
        Ok(())
    }

    /// Adds every branch of `other`.
    pub fn add_all(&mut self, other: &BranchShares) -> Result<(), LedgerError> {
        for (b, s) in other.iter() {
            self.add(b, s.employer, s.employee)?;
        }
        Ok(())
    }

    /// Every share negated: what takes an allocation back.
    pub fn negated(&self) -> Result<BranchShares, LedgerError> {
        let mut out = [Shares::default(); 6];
        for (o, s) in out.iter_mut().zip(&self.0) {
            o.employer = negate(s.employer)?;
            o.employee = negate(s.employee)?;
        }
        Ok(BranchShares(out))
    }

    /// As stored (`declarations.branch_shares`): 12 little-endian i64, each branch's employer
    /// share then its employee share.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|s| [s.employer.0.to_le_bytes(), s.employee.0.to_le_bytes()])
            .flatten()
            .collect()
    }

    /// The inverse of [`BranchShares::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<BranchShares, LedgerError> {
        if bytes.len() != 96 {
            return Err(LedgerError::SharesCorrupt);
        }
        let value = |i: usize| {
            bytes
                .get(8 * i..8 * i + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, i64::from_le_bytes)
        };
        Ok(BranchShares(std::array::from_fn(|b| Shares {
            employer: Centimes(value(2 * b)),
            employee: Centimes(value(2 * b + 1)),
        })))
    }
}

/// The postings that allocate `shares` to the branches: `contribution:declared` debited with
/// their sum, each branch's shares credited to its accounts. Negated shares take an allocation
/// back.
pub fn allocation(shares: &BranchShares) -> Result<Vec<Posting>, LedgerError> {
    let mut credits = Vec::with_capacity(12);
    for (b, s) in shares.iter() {
        credits.push(Posting::new(
            Account::Contribution(b, Share::Employer),
            negate(s.employer)?,
        ));
        credits.push(Posting::new(
            Account::Contribution(b, Share::Employee),
            negate(s.employee)?,
        ));
    }
    Journal {
        debit: Account::Declared,
        credits,
    }
    .postings()
}

/// What a rectification's transaction posts to take back the branch shares of the
/// declaration it replaces, given the reversal of that declaration's entry and its stored
/// shares. An entry that credited `contribution:declared` had its shares allocated by its
/// transaction: they are taken back, exactly as stored. An entry from before allocations
/// (migration 0020) credited the branches itself, and its reversal gives them back: nothing
/// more to post.
pub fn taking_back(
    reversed: &[Posting],
    stored: Option<&[u8]>,
) -> Result<Option<Vec<Posting>>, LedgerError> {
    if !reversed.iter().any(|p| p.account == Account::Declared) {
        return Ok(None);
    }
    let shares = BranchShares::from_bytes(stored.ok_or(LedgerError::SharesMissing)?)?;
    allocation(&shares.negated()?).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn every_account_has_one_name_and_reads_back() {
        let mut names = std::collections::HashSet::new();
        for a in Account::ALL {
            assert!(names.insert(a.name()), "{a:?}");
            assert_eq!(Account::parse(a.name()), Some(a));
        }
        assert_eq!(Account::parse("contribution:family:employer"), None);
        for c in EntryCode::ALL {
            assert_eq!(EntryCode::parse(c.as_str()), Some(c));
        }
        assert_eq!(EntryCode::Payment.key("VIR-1"), "payment:VIR-1");
    }

    #[test]
    fn each_branch_is_credited_to_its_named_accounts() {
        for b in Branch::ALL {
            assert_eq!(
                [
                    Account::Contribution(b, Share::Employer).name(),
                    Account::Contribution(b, Share::Employee).name()
                ],
                [
                    format!("contribution:{}:employer", b.as_str()),
                    format!("contribution:{}:employee", b.as_str()),
                ]
            );
        }
    }

    fn shares(pairs: [(i64, i64); 6]) -> BranchShares {
        BranchShares::new(pairs.map(|(er, ee)| Shares {
            employer: Centimes(er),
            employee: Centimes(ee),
        }))
    }

    #[test]
    fn branch_shares_are_stored_as_twelve_numbers_and_read_back() {
        let s = shares([
            (1, 2),
            (0, 0),
            (i64::MAX, i64::MIN),
            (-5, 7),
            (123_456_789, 0),
            (0, 42),
        ]);
        let b = s.to_bytes();
        assert_eq!(b.len(), 96);
        assert_eq!(&b[..16], &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(BranchShares::from_bytes(&b).unwrap(), s);
        assert!(BranchShares::from_bytes(&b[..88]).is_err());
        assert!(BranchShares::from_bytes(&[b.as_slice(), &[0u8; 8]].concat()).is_err());
    }

    /// A declaration's shares by branch, in centimes: one salary of 100.00 at the current rates.
    const SHARES: [(i64, i64); 6] = [
        (640, 0),
        (105, 52),
        (793, 396),
        (226, 226),
        (185, 0),
        (160, 0),
    ];

    fn net(postings: &[&[Posting]]) -> HashMap<Account, i64> {
        let mut net: HashMap<Account, i64> = HashMap::new();
        for p in postings.iter().flat_map(|p| p.iter()) {
            *net.entry(p.account).or_default() += p.amount.0;
        }
        net
    }

    fn reversed(p: &[Posting]) -> Vec<Posting> {
        p.iter().map(|p| p.reversed().unwrap()).collect()
    }

    #[test]
    fn an_allocation_balances_and_takes_back_what_it_gave() {
        let s = shares(SHARES);
        let given = allocation(&s).unwrap();
        // contribution:declared debited with the total, nine non-zero shares credited.
        assert_eq!(given.len(), 10);
        assert_eq!(given[0], Posting::new(Account::Declared, Centimes(2783)));
        assert_eq!(given.iter().map(|p| p.amount.0).sum::<i64>(), 0);
        assert!(given.contains(&Posting::new(
            Account::Contribution(Branch::LongTerm, Share::Employee),
            Centimes(-396)
        )));
        let back = allocation(&s.negated().unwrap()).unwrap();
        let net = net(&[&given, &back]);
        assert!(net.values().all(|v| *v == 0), "{net:?}");
    }

    #[test]
    fn a_rectification_takes_back_what_the_original_allocated_and_no_more() {
        let s = shares(SHARES);
        // An allocated declaration's entry, reversed: its shares come back from the branches.
        let entry =
            Journal::transfer(Account::Receivable, Account::Declared, Centimes(2783)).unwrap();
        let back = taking_back(&reversed(&entry), Some(&s.to_bytes()))
            .unwrap()
            .unwrap();
        let net = net(&[&entry, &allocation(&s).unwrap(), &reversed(&entry), &back]);
        assert!(net.values().all(|v| *v == 0), "{net:?}");
        // Without its stored shares it cannot be taken back: an error, not a guess.
        assert!(taking_back(&reversed(&entry), None).is_err());
        // An entry from before allocations credits the branches itself: its reversal is enough,
        // whatever is stored.
        let mut credits = Vec::new();
        for (b, sh) in s.iter() {
            credits.push(Posting::new(
                Account::Contribution(b, Share::Employer),
                Centimes(-sh.employer.0),
            ));
            credits.push(Posting::new(
                Account::Contribution(b, Share::Employee),
                Centimes(-sh.employee.0),
            ));
        }
        let old = Journal {
            debit: Account::Receivable,
            credits,
        }
        .postings()
        .unwrap();
        assert_eq!(old.len(), 10);
        assert!(taking_back(&reversed(&old), None).unwrap().is_none());
    }

    #[test]
    fn sums_that_do_not_fit_are_refused_not_wrapped() {
        let j = Journal {
            debit: Account::Bank,
            credits: vec![
                Posting::new(Account::Receivable, Centimes(i64::MIN)),
                Posting::new(Account::Receivable, Centimes(-1)),
            ],
        };
        assert_eq!(j.postings(), Err(LedgerError::Overflow));
        let mut s = BranchShares::default();
        s.add(Branch::LongTerm, Centimes(i64::MAX), Centimes(0))
            .unwrap();
        assert_eq!(
            s.add(Branch::LongTerm, Centimes(1), Centimes(0)),
            Err(LedgerError::Overflow)
        );
    }
}
