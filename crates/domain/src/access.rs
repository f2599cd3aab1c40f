//! Who may read which personal field, for what purpose: the vocabulary and the pure decision.
//!
//! The gate (in `kernel`) gathers the facts from storage, calls [`decide`], records the outcome in the
//! audit log, and only then decrypts. Keeping the decision pure makes the policy testable alone.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A principal's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An insured person (assuré).
    Insured,
    /// A user of an employer (affilié), e.g. its payroll accountant.
    EmployerUser,
    /// An agent of the fund.
    Agent,
    /// A security officer: audits, keys, locks; never personal data.
    SecurityOfficer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Insured => "insured",
            Role::EmployerUser => "employer_user",
            Role::Agent => "agent",
            Role::SecurityOfficer => "security_officer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Insured,
            Role::EmployerUser,
            Role::Agent,
            Role::SecurityOfficer,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why personal data is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// An insured person reading their own record.
    SelfService,
    /// An employer preparing payroll and declarations for its own employees.
    Payroll,
    /// An agent working an open case on this person.
    CaseReview,
    /// An agent registering or identifying a person at a counter (masked views only).
    Registration,
    /// Security officers notifying the persons a breach exposed: their contact data, released
    /// only with a second officer's approval (never through the gate).
    BreachNotification,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::SelfService => "self_service",
            Purpose::Payroll => "payroll",
            Purpose::CaseReview => "case_review",
            Purpose::Registration => "registration",
            Purpose::BreachNotification => "breach_notification",
        }
    }
}

/// The personal fields of an insured person. Each is stored encrypted in its own column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonField {
    Immatriculation,
    Cin,
    LastName,
    FirstName,
    LastNameAr,
    FirstNameAr,
    BirthDate,
    Phone,
    Email,
    Address,
    Rib,
    Children,
}

impl PersonField {
    pub const ALL: [PersonField; 12] = [
        PersonField::Immatriculation,
        PersonField::Cin,
        PersonField::LastName,
        PersonField::FirstName,
        PersonField::LastNameAr,
        PersonField::FirstNameAr,
        PersonField::BirthDate,
        PersonField::Phone,
        PersonField::Email,
        PersonField::Address,
        PersonField::Rib,
        PersonField::Children,
    ];

    /// The field's position in [`PersonField::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A set of fields as a bit mask (bit i = `PersonField::ALL[i]`), as the audit log stores it.
    pub fn bits(fields: &[PersonField]) -> i64 {
        fields.iter().fold(0, |m, f| m | (1 << f.index()))
    }

    /// The fields of a bit mask, in [`PersonField::ALL`] order.
    pub fn from_bits(bits: i64) -> Vec<PersonField> {
        PersonField::ALL
            .into_iter()
            .filter(|f| bits & (1 << f.index()) != 0)
            .collect()
    }

    /// The column that holds the field's ciphertext (also its name in the API).
    pub fn column(self) -> &'static str {
        match self {
            PersonField::Immatriculation => "immatriculation",
            PersonField::Cin => "cin",
            PersonField::LastName => "last_name",
            PersonField::FirstName => "first_name",
            PersonField::LastNameAr => "last_name_ar",
            PersonField::FirstNameAr => "first_name_ar",
            PersonField::BirthDate => "birth_date",
            PersonField::Phone => "phone",
            PersonField::Email => "email",
            PersonField::Address => "address",
            PersonField::Rib => "rib",
            PersonField::Children => "children",
        }
    }

    /// Fields an employer may see of its own employees.
    pub fn employer_visible(self) -> bool {
        matches!(
            self,
            PersonField::Immatriculation
                | PersonField::LastName
                | PersonField::FirstName
                | PersonField::LastNameAr
                | PersonField::FirstNameAr
        )
    }

    /// The masked form shown by default: enough to recognise, not enough to use.
    pub fn mask(self, plain: &str) -> String {
        const DOT: &str = "••••";
        let tail = |n: usize| -> String {
            let chars: Vec<char> = plain.chars().collect();
            // Never more than half of the value: a short CIN keeps fewer characters.
            let keep = n.min(chars.len() / 2);
            chars[chars.len() - keep..].iter().collect()
        };
        match self {
            PersonField::Cin | PersonField::Immatriculation | PersonField::Rib => {
                format!("{DOT}{}", tail(4))
            }
            PersonField::Phone => format!("{DOT}{}", tail(2)),
            PersonField::LastName
            | PersonField::FirstName
            | PersonField::LastNameAr
            | PersonField::FirstNameAr => plain
                .chars()
                .next()
                .map(|c| format!("{c}{DOT}"))
                .unwrap_or_default(),
            PersonField::BirthDate => plain
                .get(..4)
                .map(|y| format!("{y}-••-••"))
                .unwrap_or_else(|| DOT.into()),
            PersonField::Email => match plain.split_once('@') {
                Some((_, domain)) => format!("{DOT}@{domain}"),
                None => DOT.into(),
            },
            PersonField::Address | PersonField::Children => DOT.into(),
        }
    }
}

/// What the gate knows about the asker's relation to the subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// The asker is the subject (an insured person reading their own record).
    pub is_self: bool,
    /// The asker's employer has a current employment link with the subject.
    pub employs: bool,
    /// The asker (an agent) has an open case on the subject.
    pub open_case: bool,
    /// The asker's account is locked.
    pub locked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    Locked,
    RoleHasNoAccess,
    PurposeNotAllowed,
    NotSelf,
    NotEmployer,
    NoOpenCase,
    FieldNotAllowed,
    FullRevealNotAllowed,
    /// Staff log in and step up only with a passkey.
    PasskeyRequired,
    /// The read would cross the principal's read budget: refused, and the principal locked.
    ReadBudget,
    /// The record is a decoy no real workflow touches: refused, and the principal locked.
    Honeytoken,
    /// The act needs a second person's approval, and the approver is the one who asked.
    FourEyes,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::Locked => "locked",
            DenyReason::RoleHasNoAccess => "role_has_no_access",
            DenyReason::PurposeNotAllowed => "purpose_not_allowed",
            DenyReason::NotSelf => "not_self",
            DenyReason::NotEmployer => "not_employer",
            DenyReason::NoOpenCase => "no_open_case",
            DenyReason::FieldNotAllowed => "field_not_allowed",
            DenyReason::FullRevealNotAllowed => "full_reveal_not_allowed",
            DenyReason::PasskeyRequired => "passkey_required",
            DenyReason::ReadBudget => "read_budget",
            DenyReason::Honeytoken => "honeytoken",
            DenyReason::FourEyes => "four_eyes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

/// The policy. `full` asks for unmasked values.
pub fn decide(
    role: Role,
    purpose: Purpose,
    facts: Facts,
    fields: &[PersonField],
    full: bool,
) -> Decision {
    use Decision::{Allow, Deny};
    if facts.locked {
        return Deny(DenyReason::Locked);
    }
    match role {
        Role::SecurityOfficer => Deny(DenyReason::RoleHasNoAccess),
        Role::Insured => match purpose {
            Purpose::SelfService if facts.is_self => Allow,
            Purpose::SelfService => Deny(DenyReason::NotSelf),
            _ => Deny(DenyReason::PurposeNotAllowed),
        },
        Role::EmployerUser => match purpose {
            Purpose::Payroll if !facts.employs => Deny(DenyReason::NotEmployer),
            Purpose::Payroll if !fields.iter().all(|f| f.employer_visible()) => {
                Deny(DenyReason::FieldNotAllowed)
            }
            Purpose::Payroll => Allow,
            _ => Deny(DenyReason::PurposeNotAllowed),
        },
        Role::Agent => match purpose {
            Purpose::CaseReview if facts.open_case => Allow,
            Purpose::CaseReview => Deny(DenyReason::NoOpenCase),
            Purpose::Registration if full => Deny(DenyReason::FullRevealNotAllowed),
            Purpose::Registration => Allow,
            _ => Deny(DenyReason::PurposeNotAllowed),
        },
    }
}

/// Who sends or reads an employer's declarations, as the policy sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclarantKind {
    /// The operator at the command line (batch imports).
    Operator,
    /// An agent of the fund.
    Agent,
    /// A user of this employer.
    EmployerUser { own: i64 },
}

/// Whether a declarant may send declarations for `employer` and read their content (names,
/// numbers, salaries): the operator, and the employer's own users. An agent reads a person's
/// career within a case, not an employer's files.
pub fn may_see_declarations(who: DeclarantKind, employer: i64) -> bool {
    match who {
        DeclarantKind::EmployerUser { own } => own == employer,
        DeclarantKind::Operator => true,
        DeclarantKind::Agent => false,
    }
}

/// Whether a declarant may read an employer's totals (receipts, statement): the same, and
/// agents.
pub fn may_see_totals(who: DeclarantKind, employer: i64) -> bool {
    matches!(who, DeclarantKind::Agent) || may_see_declarations(who, employer)
}

/// The purpose a role reads a career for, if it may read careers at all: an insured person
/// their own, an agent within a case. Employers read the lines they declared, never a career.
pub fn career_purpose(role: Role) -> Option<Purpose> {
    match role {
        Role::Insured => Some(Purpose::SelfService),
        Role::Agent => Some(Purpose::CaseReview),
        Role::EmployerUser | Role::SecurityOfficer => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DenyReason::*;

    const NAME: &[PersonField] = &[PersonField::LastName, PersonField::Immatriculation];
    const ALL: &[PersonField] = &PersonField::ALL;

    fn facts(is_self: bool, employs: bool, open_case: bool) -> Facts {
        Facts {
            is_self,
            employs,
            open_case,
            locked: false,
        }
    }

    #[test]
    fn insured_reads_only_themselves() {
        assert_eq!(
            decide(
                Role::Insured,
                Purpose::SelfService,
                facts(true, false, false),
                ALL,
                true
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                Role::Insured,
                Purpose::SelfService,
                facts(false, false, false),
                ALL,
                false
            ),
            Decision::Deny(NotSelf)
        );
        assert_eq!(
            decide(
                Role::Insured,
                Purpose::Payroll,
                facts(true, false, false),
                ALL,
                false
            ),
            Decision::Deny(PurposeNotAllowed)
        );
    }

    #[test]
    fn employer_reads_names_and_numbers_of_its_own_employees_only() {
        assert_eq!(
            decide(
                Role::EmployerUser,
                Purpose::Payroll,
                facts(false, true, false),
                NAME,
                true
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                Role::EmployerUser,
                Purpose::Payroll,
                facts(false, false, false),
                NAME,
                false
            ),
            Decision::Deny(NotEmployer)
        );
        for f in [
            PersonField::Cin,
            PersonField::Rib,
            PersonField::Phone,
            PersonField::BirthDate,
        ] {
            assert_eq!(
                decide(
                    Role::EmployerUser,
                    Purpose::Payroll,
                    facts(false, true, false),
                    &[f],
                    false
                ),
                Decision::Deny(FieldNotAllowed)
            );
        }
    }

    #[test]
    fn agent_needs_a_case_for_full_values_and_officer_reads_nothing() {
        assert_eq!(
            decide(
                Role::Agent,
                Purpose::CaseReview,
                facts(false, false, true),
                ALL,
                true
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                Role::Agent,
                Purpose::CaseReview,
                facts(false, false, false),
                ALL,
                false
            ),
            Decision::Deny(NoOpenCase)
        );
        assert_eq!(
            decide(
                Role::Agent,
                Purpose::Registration,
                facts(false, false, false),
                ALL,
                false
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                Role::Agent,
                Purpose::Registration,
                facts(false, false, false),
                ALL,
                true
            ),
            Decision::Deny(FullRevealNotAllowed)
        );
        assert_eq!(
            decide(
                Role::SecurityOfficer,
                Purpose::CaseReview,
                facts(true, true, true),
                NAME,
                false
            ),
            Decision::Deny(RoleHasNoAccess)
        );
        let locked = Facts {
            locked: true,
            ..facts(true, true, true)
        };
        assert_eq!(
            decide(Role::Insured, Purpose::SelfService, locked, NAME, false),
            Decision::Deny(Locked)
        );
    }

    #[test]
    fn field_sets_round_trip_through_bits() {
        let set = [
            PersonField::Cin,
            PersonField::Rib,
            PersonField::Immatriculation,
        ];
        assert_eq!(PersonField::bits(&set), 0b100_0000_0011);
        assert_eq!(
            PersonField::from_bits(PersonField::bits(&set)),
            [
                PersonField::Immatriculation,
                PersonField::Cin,
                PersonField::Rib
            ]
        );
        assert_eq!(
            PersonField::from_bits(PersonField::bits(&PersonField::ALL)),
            PersonField::ALL
        );
    }

    #[test]
    fn masks_keep_little() {
        assert_eq!(PersonField::Cin.mask("AB125678"), "••••5678");
        assert_eq!(
            PersonField::Rib.mask("011519000001205000534921"),
            "••••4921"
        );
        assert_eq!(PersonField::Phone.mask("+212600123456"), "••••56");
        assert_eq!(PersonField::LastName.mask("BENNANI"), "B••••");
        assert_eq!(PersonField::LastNameAr.mask("بناني"), "ب••••");
        assert_eq!(PersonField::BirthDate.mask("1987-04-12"), "1987-••-••");
        assert_eq!(
            PersonField::Email.mask("salma@example.ma"),
            "••••@example.ma"
        );
        assert_eq!(PersonField::Cin.mask("A12"), "••••2");
        assert_eq!(PersonField::Cin.mask("JA777"), "••••77");
        assert_eq!(PersonField::Cin.mask("A123456"), "••••456");
    }

    #[test]
    fn declarations_are_their_employer_users_and_totals_agents_too() {
        let own = DeclarantKind::EmployerUser { own: 7 };
        assert!(may_see_declarations(own, 7));
        assert!(!may_see_declarations(own, 8));
        assert!(!may_see_totals(own, 8));
        assert!(!may_see_declarations(DeclarantKind::Agent, 7));
        assert!(may_see_totals(DeclarantKind::Agent, 7));
        assert!(may_see_declarations(DeclarantKind::Operator, 7));
        assert_eq!(career_purpose(Role::Insured), Some(Purpose::SelfService));
        assert_eq!(career_purpose(Role::Agent), Some(Purpose::CaseReview));
        assert_eq!(career_purpose(Role::EmployerUser), None);
        assert_eq!(career_purpose(Role::SecurityOfficer), None);
    }
}
