//! Rules of the kernel and the capability services, tested on the fast fixture
//! (`testkit::Fixture`: no HTTP server, no migrations per test). End to end, on both
//! backends, the other modules test the same services through the API.

use domain::{Centimes, DenyReason, Period, PersonField, Purpose, Role};
use kernel::{AppError, Binding, Clash, Declarant, Registrar, RevealRequest, Subject};
use ledger::{NewPayment, PaymentOutcome};
use registry::{EmployerCreated, NewEmployer, NewPerson};
use testkit::Fixture;

/// One employer, affiliated by the operator.
async fn employer(f: &Fixture) -> EmployerCreated {
    let new = NewEmployer {
        name: "ATLAS TEXTILE SARL".into(),
        activity: "Textile".into(),
        city: "Casablanca".into(),
        ice: "001525478000088".into(),
    };
    let mut created = f
        .app
        .registry()
        .affiliate_employers(Registrar::operator(), &[new], "t")
        .await
        .unwrap();
    created.pop().unwrap()
}

/// A user of that employer.
async fn clerk(f: &Fixture, e: &EmployerCreated) -> kernel::Principal {
    let number = domain::AffiliateNumber::parse(&e.affiliate_number).unwrap();
    f.principal("clerk-1", Role::EmployerUser, Binding::Employer(number))
        .await
}

fn person(cin: &str, last: &str) -> NewPerson {
    NewPerson {
        cin: cin.into(),
        last_name: last.into(),
        first_name: "Salma".into(),
        last_name_ar: "بناني".into(),
        first_name_ar: "سلمى".into(),
        birth_date: "1988-04-12".into(),
        phone: Some("0600123456".into()),
        email: None,
        address: None,
        rib: None,
        children: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_are_given_only_to_the_roles_that_hold_them() {
    let f = Fixture::new().await;
    let k = f.app.kernel();
    let e = employer(&f).await;
    let agent = f.principal("agent-1", Role::Agent, Binding::None).await;
    let officer = f
        .principal("officer-1", Role::SecurityOfficer, Binding::None)
        .await;
    let clerk = clerk(&f, &e).await;
    assert!(k.registrar(&agent).is_ok());
    for p in [&officer, &clerk] {
        assert!(matches!(
            k.registrar(p),
            Err(AppError::Denied(DenyReason::RoleHasNoAccess))
        ));
    }
    assert_eq!(k.declarant(&clerk).unwrap().employer(), Some(e.employer_id));
    assert!(k.declarant(&agent).unwrap().is_agent());
    assert!(matches!(
        k.declarant(&officer),
        Err(AppError::Denied(DenyReason::RoleHasNoAccess))
    ));
    // A locked agent holds nothing.
    k.store().set_locked(agent.id, true).await.unwrap();
    k.forget_principal(agent.id);
    let locked = k.principal(agent.id).await.unwrap().unwrap();
    assert!(matches!(
        k.registrar(&locked),
        Err(AppError::Denied(DenyReason::Locked))
    ));
    assert!(matches!(
        k.declarant(&locked),
        Err(AppError::Denied(DenyReason::Locked))
    ));
    // What an employer user declares it may see; an agent, totals only.
    let own = k.declarant(&clerk).unwrap();
    assert!(own.may_see(e.employer_id) && !own.may_see(e.employer_id + 1));
    let as_agent = Declarant::from_registrar(k.registrar(&agent).unwrap());
    assert!(!as_agent.may_see(e.employer_id) && as_agent.may_see_totals(e.employer_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gate_gives_an_employer_its_employees_names_and_audits_every_answer() {
    let f = Fixture::new().await;
    let k = f.app.kernel();
    let reg = Registrar::operator();
    let e = employer(&f).await;
    let p = f
        .app
        .registry()
        .immatriculate(
            reg,
            &[person("ZZ123456", "BENNANI"), person("ZY654321", "ALAOUI")],
            "t",
        )
        .await
        .unwrap();
    f.app
        .registry()
        .link_employments(
            reg,
            &[(e.employer_id, p[0].person_id, "2024-01-01".into())],
            "t",
        )
        .await
        .unwrap();
    let clerk = clerk(&f, &e).await;
    let ask = |cin: &str, fields: Vec<PersonField>, full: bool| RevealRequest {
        subject: Subject::Cin(domain::Cin::parse(cin).unwrap()),
        purpose: Purpose::Payroll,
        fields,
        full,
    };
    let before = k.store().count_audit().await.unwrap();
    let view = k
        .reveal(
            &clerk,
            &ask("ZZ123456", vec![PersonField::LastName], true),
            "t",
        )
        .await
        .unwrap();
    assert_eq!(
        view.fields[&PersonField::LastName].as_deref(),
        Some("BENNANI")
    );
    let phone = k
        .reveal(
            &clerk,
            &ask("ZZ123456", vec![PersonField::Phone], false),
            "t",
        )
        .await;
    assert!(
        matches!(phone, Err(AppError::Denied(DenyReason::FieldNotAllowed))),
        "{phone:?}"
    );
    // Someone else's employee and nobody at all: both refused, neither says which.
    let other = k
        .reveal(
            &clerk,
            &ask("ZY654321", vec![PersonField::LastName], false),
            "t",
        )
        .await;
    let nobody = k
        .reveal(
            &clerk,
            &ask("ZX999999", vec![PersonField::LastName], false),
            "t",
        )
        .await;
    let (Err(other), Err(nobody)) = (other, nobody) else {
        panic!("both must be refused");
    };
    assert!(
        matches!(other, AppError::Denied(DenyReason::NotEmployer)),
        "{other:?}"
    );
    assert!(
        matches!(nobody, AppError::Denied(DenyReason::NotSelf)),
        "{nobody:?}"
    );
    assert_eq!(
        format!("{:?}", server::ApiError::new(other, domain::Lang::Fr)),
        format!("{:?}", server::ApiError::new(nobody, domain::Lang::Fr)),
        "the caller gets one answer for both"
    );
    // Four answers, four audit entries, written before each answer.
    assert_eq!(k.store().count_audit().await.unwrap(), before + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_one_balanced_entry_per_bank_reference() {
    let f = Fixture::new().await;
    let reg = Registrar::operator();
    let e = employer(&f).await;
    let pay = |amount: i64| NewPayment {
        affiliate_number: e.affiliate_number.parse().unwrap(),
        period: Period::parse("202610").unwrap(),
        amount: Centimes(amount),
        bank_reference: "VIR-2026-0001".into(),
        paid_on: domain::Date::parse("date", "2026-11-05").unwrap(),
    };
    let ledger = f.app.ledger();
    let first = ledger
        .record_payment(reg, &pay(150_760), "t")
        .await
        .unwrap();
    assert!(matches!(first, PaymentOutcome::Recorded(ref v) if v.amount == Centimes(150_760)));
    let again = ledger
        .record_payment(reg, &pay(150_760), "t")
        .await
        .unwrap();
    assert!(matches!(again, PaymentOutcome::AlreadyRecorded(_)));
    let other = ledger.record_payment(reg, &pay(1), "t").await;
    assert!(
        matches!(other, Err(AppError::Conflict(Clash::Payment))),
        "{other:?}"
    );
    let check = ledger.ledger_check(None).await.unwrap();
    let balance = |name: &str| {
        check
            .accounts
            .iter()
            .find(|a| a.account.name() == name)
            .map(|a| a.balance)
    };
    assert!(check.balanced);
    assert_eq!(balance("bank"), Some(Centimes(150_760)));
    assert_eq!(balance("receivable"), Some(Centimes(-150_760)));
    assert_eq!(check.accounts.len(), 2, "{:?}", check.accounts);
}
