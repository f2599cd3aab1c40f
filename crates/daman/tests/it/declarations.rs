//! Declarations: préétablis, imports, the ledger, careers and who may read what, on both
//! backends.

use crate::{World, on_both_backends};
use contributions::{ImportFile, ImportOutcome};
use domain::{AffiliateNumber, Centimes, Date, Lang, Parameters, Period, Role};
use ebds::{Declaration, Entrant, Form, Situation};
use kernel::{Binding, Declarant, Principal};
use kernel::{Clash, Missing};
use ledger::{NewPayment, PaymentOutcome};
use store::Backend;

on_both_backends!(
    a_month_is_declared_posted_and_read_back,
    a_rejected_file_changes_nothing_and_says_why,
    a_duplicate_upload_changes_nothing,
    a_complementary_declaration_adds_to_the_period,
    payments_are_recorded_once,
    employers_and_insured_read_only_their_own,
    a_synthetic_month_totals_what_the_rate_table_says,
    the_api_serves_declarations,
    late_payment_surcharges_follow_the_table,
    nobody_is_declared_twice_and_rejected_files_create_nobody,
    agents_read_totals_not_files_and_payments_are_checked,
    a_rectification_replaces_a_declaration_and_keeps_the_history,
    a_person_who_left_is_not_on_the_next_preetabli,
    a_decoy_read_or_declared_locks_the_principal,
    a_preetabli_issued_before_its_employees_were_sealed_whole_is_still_read,
    a_batch_is_checked_against_every_batch_not_yet_written,
    the_ledger_check_finds_what_does_not_balance,
);

const PERIOD: &str = "202610";

pub(crate) fn period() -> Period {
    Period::parse(PERIOD).unwrap()
}

async fn principal(w: &World, label: &str, role: Role, binding: Binding) -> Principal {
    w.t.app
        .kernel()
        .ensure_principal(Some(label), role, &binding)
        .await
        .unwrap()
}

pub(crate) async fn employer(w: &World, n: usize) -> (Principal, Declarant, u32) {
    let a = if n == 1 {
        &w.employer1.affiliate_number
    } else {
        &w.employer2.affiliate_number
    };
    let number = AffiliateNumber::parse(a).unwrap();
    let p = principal(
        w,
        &format!("employer-{}", n - 1),
        Role::EmployerUser,
        Binding::Employer(number),
    )
    .await;
    let d = w.t.app.kernel().declarant(&p).unwrap();
    (p, d, number.value())
}

pub(crate) async fn insured(w: &World, i: usize, imma: &str) -> Principal {
    principal(
        w,
        &format!("insured-{i}"),
        Role::Insured,
        Binding::Person(kernel::Subject::Immatriculation(
            domain::Immatriculation::parse(imma).unwrap(),
        )),
    )
    .await
}

/// Issues the préétablis of the period and returns employer 1's, as the employer downloads it.
pub(crate) async fn preetabli(w: &World) -> ebds::Preetabli {
    let n =
        w.t.app
            .contributions()
            .issue_preetablis(kernel::Registrar::operator(), period(), &[], "t")
            .await
            .unwrap();
    assert_eq!(n, 2);
    let (_, who, number) = employer(w, 1).await;
    preetabli_of(w, who, number, period()).await
}

/// An employer's préétabli for a period, as it downloads it, read back.
pub(crate) async fn preetabli_of(
    w: &World,
    who: Declarant,
    number: u32,
    period: Period,
) -> ebds::Preetabli {
    let bytes =
        w.t.app
            .contributions()
            .preetabli_file(who, number, period, "t")
            .await
            .unwrap();
    ebds::read_preetabli(bytes.as_slice()).unwrap()
}

/// Issues the préétablis of the following month (202611) and returns the employer's.
pub(crate) async fn next_preetabli(w: &World, who: Declarant, number: u32) -> ebds::Preetabli {
    let next = Period::parse("202611").unwrap();
    w.t.app
        .contributions()
        .issue_preetablis(kernel::Registrar::operator(), next, &[], "t")
        .await
        .unwrap();
    preetabli_of(w, who, number, next).await
}

/// Employer 1's declaration: A earns 8 000.00 for 26 days, B is on sick leave with 3 422.72.
pub(crate) fn declaration_from(pre: &ebds::Preetabli) -> Declaration {
    let lines = pre
        .employees
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (gross, situation, days) = if i == 0 {
                (800_000, Situation::Normal, 26)
            } else {
                (342_272, Situation::Sick, 20)
            };
            ebds::Line {
                employee: e.clone(),
                af_repayable: Centimes(0),
                days,
                gross: Centimes(gross),
                capped: Centimes(gross.min(600_000)),
                situation,
            }
        })
        .collect();
    Declaration {
        form: Form::Main,
        transfer_id: pre.transfer_id,
        identity: pre.identity.clone(),
        lines,
        entrants: vec![],
        layout: ebds::Layout {
            ending: ebds::Ending::CrLf,
            final_newline: true,
        },
    }
}

pub(crate) fn bytes_of(d: &Declaration) -> Vec<u8> {
    ebds::declaration_bytes(d, Some(&Parameters::morocco().unwrap())).unwrap()
}

pub(crate) async fn import(w: &World, who: Declarant, bytes: &[u8]) -> ImportOutcome {
    import_result(w, who, bytes).await.unwrap().pop().unwrap()
}

pub(crate) fn accepted(o: ImportOutcome) -> contributions::DeclarationSummary {
    match o {
        ImportOutcome::Accepted(s) => s,
        other => panic!("not accepted: {other:#?}"),
    }
}

pub(crate) fn errors(o: ImportOutcome) -> Vec<(u64, String, String, String)> {
    match o {
        ImportOutcome::Rejected { errors } => errors
            .into_iter()
            .map(|e| (e.line, e.record, e.field, e.code))
            .collect(),
        other => panic!("not rejected: {other:#?}"),
    }
}

async fn a_month_is_declared_posted_and_read_back(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    // The préétabli lists A and B with their children (2 each: 600.00 MAD of allowances).
    let immas: Vec<String> = pre
        .employees
        .iter()
        .map(|e| format!("{:09}", e.immatriculation))
        .collect();
    let mut want = vec![w.a.immatriculation.clone(), w.b.immatriculation.clone()];
    want.sort();
    assert_eq!(immas, want);
    assert_eq!(pre.employees[0].name, "BENNANI SALMA");
    assert_eq!(pre.employees[0].af_net, Centimes(60_000));
    assert_eq!(pre.identity.due, Date::new(2026, 11, 10).unwrap());
    let d = declaration_from(&pre);
    let bytes = bytes_of(&d);
    let (_, who, number) = employer(&w, 1).await;
    let s = accepted(import(&w, who, &bytes).await);
    // 8 000.00: employer 1 507.60, employee 449.60. 3 422.72: employer 721.84, employee 230.69.
    assert_eq!(s.employer_share, Centimes(150_760 + 72_184));
    assert_eq!(s.employee_share, Centimes(44_960 + 23_069));
    assert_eq!(s.total, Centimes(150_760 + 72_184 + 44_960 + 23_069));
    assert_eq!((s.lines, s.entrants, s.days), (2, 0, 46));
    assert_eq!(s.gross, Centimes(800_000 + 342_272));
    assert_eq!(s.capped, Centimes(600_000 + 342_272));
    // The statement owes exactly that, due on the 10th; the ledger balances.
    let st = w.t.app.ledger().statement(who, number, "t").await.unwrap();
    assert_eq!(st.periods.len(), 1);
    assert_eq!(st.periods[0].owed, s.total);
    assert_eq!(st.periods[0].due_date, "2026-11-10");
    let check = w.t.app.ledger().ledger_check(None).await.unwrap();
    assert!(check.balanced, "{check:?}");
    let bal = |name: &str| balance(&check, name);
    assert_eq!(bal("receivable"), Some(s.total));
    // Long term on 6 000.00 + 3 422.72 capped: 7.93 % → 475.80 + 271.42.
    assert_eq!(
        bal("contribution:long_term:employer"),
        Some(Centimes(-(47_580 + 27_142)))
    );
    // Employees: 3.96 % of the same.
    assert_eq!(
        bal("contribution:long_term:employee"),
        Some(Centimes(-(23_760 + 13_554)))
    );
    // The declaration's own entry is two postings: the employer owes the total, declared; its
    // transaction allocated that to the branches, so nothing is left unallocated.
    assert_eq!(
        w.t.app
            .kernel()
            .store()
            .entry_postings(&format!("declaration:{}", s.declaration_id))
            .await
            .unwrap()
            .iter()
            .map(|p| (p.account.name().to_string(), p.amount.0))
            .collect::<Vec<_>>(),
        vec![
            ("contribution:declared".to_string(), -s.total.0),
            ("receivable".to_string(), s.total.0),
        ]
    );
    assert_eq!(bal("contribution:declared"), Some(Centimes(0)));
    assert_eq!(branches_total(&check), -s.total.0);
    // Postings, and the accounts they name, are never changed or removed (the triggers refuse,
    // even to the database's owner).
    for sql in [
        "UPDATE ledger_postings SET amount = 0",
        "DELETE FROM ledger_postings",
        "UPDATE ledger_accounts SET name = 'bank' WHERE name = 'receivable'",
        "DELETE FROM ledger_accounts",
    ] {
        let e = w.t.raw_execute(sql, &[]).await.unwrap_err();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    // The file comes back byte for byte (CRLF kept).
    let back =
        w.t.app
            .contributions()
            .declaration_file(who, s.declaration_id, "t")
            .await
            .unwrap();
    assert_eq!(back, bytes);
    // The receipt's control sums are what the file's recaps state (B03 and B06 N_T_Ctr at
    // columns 126–144 and 72–90, B06 N_T_Num_Imma at 23–37; no entrants: B05 is zero).
    let text = String::from_utf8(bytes.clone()).unwrap();
    let rec = |t: &str| text.lines().find(|l| l.starts_with(t)).unwrap().to_string();
    let sums = s.control_sums.clone().unwrap();
    assert_eq!(sums.employees, rec("B03")[125..144]);
    assert_eq!(sums.entrants, rec("B05")[71..90]);
    assert_eq!(sums.entrants, "0".repeat(19));
    assert_eq!(sums.total, rec("B06")[71..90]);
    assert_eq!(sums.immatriculations, rec("B06")[22..37]);
    // The same receipt later; a list of receipts has the totals only.
    assert_eq!(
        w.t.app
            .contributions()
            .declaration_receipt(who, s.declaration_id, "t")
            .await
            .unwrap(),
        s
    );
    assert_eq!(
        w.t.app
            .contributions()
            .declarations_of(who, number, "t")
            .await
            .unwrap(),
        vec![contributions::DeclarationSummary {
            control_sums: None,
            ..s.clone()
        }]
    );
    // A reads exactly their own month.
    let a = insured(&w, 0, &w.a.immatriculation).await;
    let career = w.t.app.contributions().career(&a, None, "t").await.unwrap();
    assert_eq!(career.len(), 1);
    assert_eq!(career[0].immatriculation, w.a.immatriculation);
    assert_eq!(
        (career[0].days, career[0].gross, career[0].capped),
        (26, Centimes(800_000), Centimes(600_000))
    );
    assert_eq!(career[0].employer_share, Centimes(150_760));
    assert_eq!(career[0].affiliate_number, w.employer1.affiliate_number);
}

pub(crate) async fn counts(w: &World) -> store::DeclarationCounts {
    w.t.app.kernel().store().declaration_counts().await.unwrap()
}

/// An account's balance in a ledger check, if the account has postings.
fn balance(check: &ledger::FundView, account: &str) -> Option<Centimes> {
    check
        .accounts
        .iter()
        .find(|a| a.account.name() == account)
        .map(|a| a.balance)
}

/// What the branches' accounts (`contribution:<branch>:<share>`) hold together.
fn branches_total(check: &ledger::FundView) -> i64 {
    check
        .accounts
        .iter()
        .filter(|a| {
            let name = a.account.name();
            name.starts_with("contribution:") && name.matches(':').count() == 2
        })
        .map(|a| a.balance.0)
        .sum()
}

async fn a_rejected_file_changes_nothing_and_says_why(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, _) = employer(&w, 1).await;
    let before = counts(&w).await;
    // Registry rules: B is left out (missing), C (not in this préétabli) is declared as known,
    // A's children differ, and an entrant gives a number and no CIN (which no registry
    // lookup answers: the same error whether the number is anyone's).
    let mut d = declaration_from(&pre);
    let mut c_line = d.lines[1].clone();
    c_line.employee.immatriculation = w.c.immatriculation.parse().unwrap();
    d.lines[1] = c_line;
    d.lines[0].employee.children = 3;
    d.entrants.push(Entrant {
        immatriculation: Some(199_999_999),
        name: "INCONNU".into(),
        cin: String::new(),
        days: 10,
        gross: Centimes(100_000),
        capped: Centimes(100_000),
    });
    let got = errors(import(&w, who, &bytes_of(&d)).await);
    let b_missing = format!("{:09}", pre.employees[1].immatriculation);
    assert_eq!(
        got,
        vec![
            (
                3,
                "B02".into(),
                "N_Enfants".into(),
                "differs_from_preetabli".into()
            ),
            (
                4,
                "B02".into(),
                "N_Num_Assure".into(),
                "not_in_preetabli".into()
            ),
            (
                5,
                "B03".into(),
                "N_Nbr_Salaries".into(),
                "missing_employee".into()
            ),
            (
                6,
                "B04".into(),
                "L_Num_CIN".into(),
                "entrant_cin_required".into()
            ),
        ],
        "missing {b_missing}"
    );
    // The préétabli's transfer id is repeated in B00 (or left at zero); another one is refused.
    let mut d = declaration_from(&pre);
    d.transfer_id = pre.transfer_id + 1;
    assert_eq!(
        errors(import(&w, who, &bytes_of(&d)).await),
        vec![(
            1,
            "B00".into(),
            "N_Identif_Transfert".into(),
            "transfer_id".into()
        )]
    );
    // A month for which no préétabli was issued.
    let mut d = declaration_from(&pre);
    d.identity.period = Period::parse("202611").unwrap();
    assert_eq!(
        errors(import(&w, who, &bytes_of(&d)).await),
        vec![(
            1,
            "B00".into(),
            "N_Identif_Transfert".into(),
            "no_preetabli".into()
        )]
    );
    // A file broken in its format: every error, in Arabic when asked.
    let mut bytes = bytes_of(&declaration_from(&pre));
    bytes[2 * 262 + 111] = b'9'; // days of A: 96
    let out =
        w.t.app
            .contributions()
            .import_declarations(
                who,
                vec![ImportFile {
                    name: "x".into(),
                    bytes,
                }],
                Lang::Ar,
                "t",
            )
            .await
            .unwrap();
    let ImportOutcome::Rejected { errors } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(errors[0].code, "days_range");
    assert_eq!(errors[0].message, "من 0 إلى 26 يومًا");
    assert_eq!(errors[0].found, "96");
    // Nothing was written but the rejections, which the employer reads again, the latest
    // first: the four files above, each with every error.
    assert_eq!(counts(&w).await, before);
    assert!(
        w.t.app
            .ledger()
            .ledger_check(None)
            .await
            .unwrap()
            .accounts
            .is_empty()
    );
    let (_, _, number) = employer(&w, 1).await;
    let rejections = || async {
        w.t.app
            .contributions()
            .declaration_rejections(who, number, Lang::Fr, "t")
            .await
            .unwrap()
    };
    let kept = rejections().await;
    let rules: Vec<Vec<&str>> = kept
        .iter()
        .map(|r| r.errors.iter().map(|e| e.code.as_str()).collect())
        .collect();
    assert_eq!(
        rules,
        vec![
            // 96 days: the rule, the line's control sum, B03's and B06's totals.
            vec!["days_range", "control_sum", "total", "total"],
            vec!["no_preetabli"],
            vec!["transfer_id"],
            vec![
                "differs_from_preetabli",
                "not_in_preetabli",
                "missing_employee",
                "entrant_cin_required"
            ],
        ]
    );
    assert_eq!(kept[3].error_count, 4);
    // Sealed: neither the values found nor the fields are in the database in clear.
    for blob in
        w.t.raw_blobs("SELECT errors FROM declaration_rejections")
            .await
    {
        for clear in [&b"199999999"[..], b"N_Num_Assure", b"days_range"] {
            assert!(!blob.windows(clear.len()).any(|w| w == clear));
        }
    }
    // The latest 20 are kept: after 18 more, the two oldest are gone.
    let bad = bytes_of(&declaration_from(&pre))
        .into_iter()
        .enumerate()
        .map(|(i, b)| if i == 2 * 262 + 111 { b'9' } else { b })
        .collect::<Vec<u8>>();
    let rejected = |bytes: Vec<u8>| {
        let w = &w;
        async move {
            let out = import(w, who, &bytes).await;
            assert!(matches!(out, ImportOutcome::Rejected { .. }));
        }
    };
    for _ in 0..18 {
        rejected(bad.clone()).await;
    }
    let kept = rejections().await;
    assert_eq!(kept.len(), 20);
    assert_eq!(kept[19].errors[0].code, "no_preetabli");
    // A file of 20 000 unknown records: all its errors counted, the first 1 000 kept.
    let junk = ("X".repeat(260) + "\n").repeat(20_000);
    rejected(junk.into_bytes()).await;
    let kept = rejections().await;
    // 20 000 unknown records, and the six records a declaration needs, missing.
    assert_eq!((kept[0].error_count, kept[0].errors.len()), (20_006, 1_000));
    assert!(kept[0].errors.iter().all(|e| e.code == "unknown_record"));
}

async fn a_duplicate_upload_changes_nothing(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, _) = employer(&w, 1).await;
    let bytes = bytes_of(&declaration_from(&pre));
    let first = accepted(import(&w, who, &bytes).await);
    let after_first = counts(&w).await;
    let again = import(&w, who, &bytes).await;
    // The same receipt, control sums included.
    assert_eq!(again, ImportOutcome::Duplicate(first.clone()));
    assert_eq!(counts(&w).await, after_first);
    // Another main declaration for the same period is refused: corrections are complementary.
    let mut other = declaration_from(&pre);
    other.lines[0].gross = Centimes(900_000);
    let got = errors(import(&w, who, &bytes_of(&other)).await);
    assert_eq!(
        got,
        vec![(1, "B00".into(), "L_Cat".into(), "already_declared".into())]
    );
    // The same two files in one batch: the second is a duplicate of the first.
    let w2 = World::new(b).await;
    let pre2 = preetabli(&w2).await;
    let (_, who2, _) = employer(&w2, 1).await;
    let bytes2 = bytes_of(&declaration_from(&pre2));
    let file = ImportFile {
        name: "DS".into(),
        bytes: bytes2,
    };
    let out =
        w2.t.app
            .contributions()
            .import_declarations(who2, vec![file.clone(), file], Lang::Fr, "t")
            .await
            .unwrap();
    assert!(out[0].is_accepted());
    assert!(!out[1].is_accepted());
    assert_eq!(counts(&w2).await.declarations, 1);
}

async fn a_complementary_declaration_adds_to_the_period(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    let entrant = |cin: &str| Entrant {
        immatriculation: None,
        name: "NOUVEAU SALARIE".into(),
        cin: cin.into(),
        days: 13,
        gross: Centimes(200_000),
        capped: Centimes(200_000),
    };
    let complementary = |n: u8, cin: &str| Declaration {
        form: Form::Complementary(n),
        transfer_id: pre.transfer_id,
        identity: pre.identity.clone(),
        lines: vec![],
        entrants: vec![entrant(cin)],
        layout: ebds::Layout::default(),
    };
    // Before the main declaration: refused.
    let got = errors(import(&w, who, &bytes_of(&complementary(1, "QE100001"))).await);
    assert_eq!(
        got,
        vec![(
            1,
            "E00".into(),
            "L_Cat".into(),
            "main_declaration_missing".into()
        )]
    );
    let main_bytes = bytes_of(&declaration_from(&pre));
    let main = accepted(import(&w, who, &main_bytes).await);
    let persons_before = counts(&w).await.persons;
    let e1 = accepted(import(&w, who, &bytes_of(&complementary(1, "QE100001"))).await);
    assert_eq!((e1.form, e1.entrants, e1.lines), (1, 1, 0));
    // 2 000.00: employer 21.09 % = 421.80, employee 6.74 % = 134.80.
    assert_eq!(
        (e1.employer_share, e1.employee_share),
        (Centimes(42_180), Centimes(13_480))
    );
    // Its control sums: the entrant's S_Ctr (no number yet: 0 + 13 + 200 000 + 200 000), in E05
    // and E06; the receipt asked for later says the same (the entrant numbered since is kept as
    // declared).
    assert_eq!(
        w.t.app
            .contributions()
            .declaration_receipt(who, e1.declaration_id, "t")
            .await
            .unwrap(),
        e1
    );
    let sums = e1.control_sums.clone().unwrap();
    assert_eq!(
        (sums.employees, sums.entrants, sums.total),
        (
            format!("{:019}", 0),
            format!("{:019}", 400_013),
            format!("{:019}", 400_013)
        )
    );
    // The entrant had no number: nobody is created and nobody is linked, an immatriculation
    // request waits for an agent.
    assert_eq!(counts(&w).await.persons, persons_before);
    // E1 again is a duplicate; another E1 (other content) is refused; E2 is accepted.
    assert!(matches!(
        import(&w, who, &bytes_of(&complementary(1, "QE100001"))).await,
        ImportOutcome::Duplicate(_)
    ));
    let got = errors(import(&w, who, &bytes_of(&complementary(1, "QE100002"))).await);
    assert_eq!(got[0].3, "already_declared");
    accepted(import(&w, who, &bytes_of(&complementary(2, "QE100002"))).await);
    // The period owes both; the original declaration is untouched, byte for byte.
    let st = w.t.app.ledger().statement(who, number, "t").await.unwrap();
    assert_eq!(
        st.periods[0].owed,
        Centimes(main.total.0 + 2 * (42_180 + 13_480))
    );
    let back =
        w.t.app
            .contributions()
            .declaration_file(who, main.declaration_id, "t")
            .await
            .unwrap();
    assert_eq!(back, main_bytes);
    // Once an agent immatriculates them from the requests, they are employed from the period
    // and next month's préétabli lists them; the new person's career has the E1 line.
    let numbers = confirm_requests(&w).await;
    assert_eq!(numbers.len(), 2);
    assert_eq!(counts(&w).await.persons, persons_before + 2);
    let next = next_preetabli(&w, who, number).await;
    assert_eq!(next.employees.len(), 4);
    assert!(next.employees.iter().any(|e| e.name == "NOUVEAU SALARIE"));
    let (_, insured) =
        w.t.login(
            "newcomer",
            Role::Insured,
            Binding::Person(kernel::Subject::Immatriculation(
                domain::Immatriculation::parse(&numbers[0]).unwrap(),
            )),
        )
        .await;
    let career =
        w.t.post("/api/v1/career", &insured, serde_json::json!({}))
            .await;
    assert_eq!(career.status, 200, "{:?}", career.json);
    let lines = career.json.as_array().unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0]["record"].as_str(), lines[0]["days"].as_u64()),
        (Some("E04"), Some(13))
    );
    assert!(w.t.app.ledger().ledger_check(None).await.unwrap().balanced);
}

/// An agent confirms every pending immatriculation request as a new person: their numbers.
pub(crate) async fn confirm_requests(w: &World) -> Vec<String> {
    let r =
        w.t.post(
            "/api/v1/employments/claims",
            &w.agent,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let mut numbers = Vec::new();
    for c in r.json["claims"].as_array().unwrap() {
        if c["kind"] != "request" {
            continue;
        }
        let d =
            w.t.post(
                "/api/v1/employments/claims/decide",
                &w.agent,
                serde_json::json!({"claim_id": c["claim_id"], "decision": "confirm"}),
            )
            .await;
        assert_eq!(d.status, 200, "{:?}", d.json);
        numbers.push(d.json["immatriculation"].as_str().unwrap().to_string());
    }
    numbers
}

async fn payments_are_recorded_once(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    let s = accepted(import(&w, who, &bytes_of(&declaration_from(&pre))).await);
    let pay = NewPayment {
        affiliate_number: number,
        period: period(),
        amount: Centimes(100_000),
        bank_reference: "VIR-2026-11-000123".into(),
        paid_on: Date::new(2026, 11, 8).unwrap(),
    };
    let reg = kernel::Registrar::operator();
    assert!(matches!(
        w.t.app
            .ledger()
            .record_payment(reg, &pay, "t")
            .await
            .unwrap(),
        PaymentOutcome::Recorded(_)
    ));
    let entries = counts(&w).await.entries;
    assert!(matches!(
        w.t.app
            .ledger()
            .record_payment(reg, &pay, "t")
            .await
            .unwrap(),
        PaymentOutcome::AlreadyRecorded(_)
    ));
    assert_eq!(counts(&w).await.entries, entries);
    let st = w.t.app.ledger().statement(who, number, "t").await.unwrap();
    assert_eq!(st.periods[0].paid, Centimes(100_000));
    assert_eq!(st.periods[0].balance, Centimes(s.total.0 - 100_000));
    assert_eq!(st.balance, st.periods[0].balance);
    let check = w.t.app.ledger().ledger_check(None).await.unwrap();
    assert!(check.balanced);
    assert!(
        check
            .accounts
            .iter()
            .any(|a| a.account.name() == "bank" && a.balance == Centimes(100_000))
    );
    // A zero amount is refused.
    let zero = NewPayment {
        amount: Centimes(0),
        bank_reference: "VIR-0".into(),
        ..pay
    };
    assert!(
        w.t.app
            .ledger()
            .record_payment(reg, &zero, "t")
            .await
            .is_err()
    );
}

async fn employers_and_insured_read_only_their_own(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who1, n1) = employer(&w, 1).await;
    let (_, who2, n2) = employer(&w, 2).await;
    let s = accepted(import(&w, who1, &bytes_of(&declaration_from(&pre))).await);
    // Employer 2 can neither read employer 1's declaration, lines, statement or préétabli, nor
    // declare for it: the same answers as for something that does not exist.
    assert!(matches!(
        w.t.app
            .contributions()
            .declaration_file(who2, s.declaration_id, "t")
            .await,
        Err(kernel::AppError::NotFound(_))
    ));
    assert!(matches!(
        w.t.app
            .contributions()
            .declaration_lines(who2, s.declaration_id, "t")
            .await,
        Err(kernel::AppError::NotFound(_))
    ));
    assert!(w.t.app.ledger().statement(who2, n1, "t").await.is_err());
    assert!(
        w.t.app
            .contributions()
            .preetabli_file(who2, n1, period(), "t")
            .await
            .is_err()
    );
    let got = errors(import(&w, who2, &bytes_of(&declaration_from(&pre))).await);
    assert_eq!(
        got,
        vec![(
            2,
            "B01".into(),
            "N_Num_Affilie".into(),
            "unknown_affiliate".into()
        )]
    );
    assert!(
        w.t.app
            .ledger()
            .statement(who2, n2, "t")
            .await
            .unwrap()
            .periods
            .is_empty()
    );
    // Employer 1 reads the lines it declared, nothing else.
    let lines =
        w.t.app
            .contributions()
            .declaration_lines(who1, s.declaration_id, "t")
            .await
            .unwrap();
    assert_eq!(lines.len(), 2);
    // Insured persons: A and B each see only their own line; C and D see nothing.
    let a = insured(&w, 0, &w.a.immatriculation).await;
    let bb = insured(&w, 1, &w.b.immatriculation).await;
    let c = insured(&w, 2, &w.c.immatriculation).await;
    let mine = |v: Vec<contributions::CareerLine>| {
        v.into_iter().map(|l| l.immatriculation).collect::<Vec<_>>()
    };
    assert_eq!(
        mine(w.t.app.contributions().career(&a, None, "t").await.unwrap()),
        vec![w.a.immatriculation.clone()]
    );
    assert_eq!(
        mine(
            w.t.app
                .contributions()
                .career(&bb, None, "t")
                .await
                .unwrap()
        ),
        vec![w.b.immatriculation.clone()]
    );
    assert!(
        w.t.app
            .contributions()
            .career(&c, None, "t")
            .await
            .unwrap()
            .is_empty()
    );
    // Nobody reads another person's career: not an insured person, not an employer, not an
    // agent without a case.
    let a_id: i64 = w.a.id.parse().unwrap();
    assert!(
        w.t.app
            .contributions()
            .career(&c, Some(a_id), "t")
            .await
            .is_err()
    );
    let (p1, _, _) = employer(&w, 1).await;
    assert!(
        w.t.app
            .contributions()
            .career(&p1, Some(a_id), "t")
            .await
            .is_err()
    );
    let agent = principal(&w, "agent-1", Role::Agent, Binding::None).await;
    assert!(matches!(
        w.t.app
            .contributions()
            .career(&agent, Some(a_id), "t")
            .await,
        Err(kernel::AppError::Denied(domain::DenyReason::NoOpenCase))
    ));
    // With a case about A, the agent reads A's career (and no one else's).
    let r =
        w.t.post(
            "/api/v1/cases",
            &w.agent,
            serde_json::json!({"immatriculation": w.a.immatriculation, "reason": "AMO claim 2026-211"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(
        mine(
            w.t.app
                .contributions()
                .career(&agent, Some(a_id), "t")
                .await
                .unwrap()
        ),
        vec![w.a.immatriculation.clone()]
    );
    let b_id: i64 = w.b.id.parse().unwrap();
    assert!(
        w.t.app
            .contributions()
            .career(&agent, Some(b_id), "t")
            .await
            .is_err()
    );
    // Every read and refusal is in the audit log, with its purpose.
    let events =
        w.t.app
            .kernel()
            .store()
            .audit_events(0, 10_000)
            .await
            .unwrap();
    let careers: Vec<(&str, Option<&str>)> = events
        .iter()
        .filter(|(_, e)| e.action == "read_career")
        .map(|(_, e)| (e.outcome.as_str(), e.purpose.as_deref()))
        .collect();
    assert_eq!(
        careers,
        vec![
            ("allow", Some("self_service")),
            ("allow", Some("self_service")),
            ("allow", Some("self_service")),
            ("deny:not_self", Some("self_service")),
            ("deny:role_has_no_access", None),
            ("deny:no_open_case", Some("case_review")),
            ("allow", Some("case_review")),
            ("deny:no_open_case", Some("case_review")),
        ]
    );
}

/// Registers a synthetic population through the registry commands (as `daman load` does).
async fn load(w: &World, pop: synth::Population) {
    let reg = kernel::Registrar::operator();
    let employers: Vec<registry::NewEmployer> = (0..pop.employers)
        .map(|i| {
            let e = pop.employer(i);
            registry::NewEmployer {
                name: e.name,
                activity: e.activity,
                city: e.city,
                ice: e.ice,
            }
        })
        .collect();
    let ids: Vec<i64> =
        w.t.app
            .registry()
            .affiliate_employers(reg, &employers, "t")
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.employer_id)
            .collect();
    let people: Vec<synth::SynthPerson> = (0..pop.persons).map(|i| pop.person(i)).collect();
    let batch: Vec<registry::NewPerson> = people
        .iter()
        .map(|p| registry::NewPerson {
            cin: p.cin.clone(),
            last_name: p.last_name.clone(),
            first_name: p.first_name.clone(),
            last_name_ar: p.last_name_ar.clone(),
            first_name_ar: p.first_name_ar.clone(),
            birth_date: p.birth_date.clone(),
            phone: None,
            email: None,
            address: None,
            rib: None,
            children: p.children,
        })
        .collect();
    let created =
        w.t.app
            .registry()
            .immatriculate(reg, &batch, "t")
            .await
            .unwrap();
    let links: Vec<(i64, i64, String)> = people
        .iter()
        .zip(&created)
        .map(|(p, c)| (ids[p.employer], c.person_id, "2020-01-01".to_string()))
        .collect();
    w.t.app
        .registry()
        .link_employments(reg, &links, "t")
        .await
        .unwrap();
}

/// Each branch's share, rounded half up to the centime, from the table alone.
fn independent_shares(params: &Parameters, p: Period, gross: i64) -> (i64, i64) {
    let rates = params.rates_at(p).unwrap();
    let capped = gross.min(params.ceiling_at(p).unwrap().0);
    let share = |base: i64, bp: u32| (base * i64::from(bp) + 5_000) / 10_000;
    let mut t = (0, 0);
    for b in domain::Branch::ALL {
        let r = rates.rate(b);
        let base = if r.capped { capped } else { gross };
        t.0 += share(base, r.employer);
        t.1 += share(base, r.employee);
    }
    t
}

async fn a_synthetic_month_totals_what_the_rate_table_says(b: Backend) {
    let w = World::new(b).await;
    let params = Parameters::morocco().unwrap();
    let smig = params.smig_at(period()).unwrap().monthly;
    let pop = synth::Population::new(7, 30, 600, smig);
    load(&w, pop).await;
    w.t.app
        .contributions()
        .issue_preetablis(kernel::Registrar::operator(), period(), &[], "t")
        .await
        .unwrap();
    let numbers = w.t.app.kernel().store().employer_numbers().await.unwrap();
    let plan = synth::month::MonthPlan {
        ceiling: params.ceiling_at(period()).unwrap(),
        entrants_per_mille: 500,
    };
    let (mut files, mut expected, mut lines) = (Vec::new(), (0i64, 0i64), 0usize);
    let mut per_employer = Vec::new();
    for n in numbers {
        let pre = preetabli_of(&w, Declarant::operator(), n as u32, period()).await;
        let d = synth::month::declaration(&pop, &pre, plan);
        let gross: Vec<i64> = d
            .lines
            .iter()
            .map(|l| l.gross.0)
            .chain(d.entrants.iter().map(|e| e.gross.0))
            .collect();
        lines += gross.len();
        let mut owed = 0;
        for g in gross {
            let (er, ee) = independent_shares(&params, period(), g);
            expected.0 += er;
            expected.1 += ee;
            owed += er + ee;
        }
        per_employer.push((n as u32, owed));
        files.push(ImportFile {
            name: format!("DS_{n}"),
            bytes: bytes_of(&d),
        });
    }
    assert!(lines > 600, "{lines}");
    let out =
        w.t.app
            .contributions()
            .import_declarations(Declarant::operator(), files, Lang::Fr, "t")
            .await
            .unwrap();
    assert!(out.iter().all(ImportOutcome::is_accepted), "{out:#?}");
    let check = w.t.app.ledger().ledger_check(Some(period())).await.unwrap();
    let sum = |suffix: &str| -> i64 {
        check
            .accounts
            .iter()
            .filter(|a| a.account.name().ends_with(suffix))
            .map(|a| -a.balance.0)
            .sum()
    };
    assert_eq!((sum(":employer"), sum(":employee")), expected);
    for (n, owed) in per_employer {
        let st =
            w.t.app
                .ledger()
                .statement(Declarant::operator(), n, "t")
                .await
                .unwrap();
        assert_eq!(st.owed, Centimes(owed), "employer {n}");
    }
    assert!(w.t.app.ledger().ledger_check(None).await.unwrap().balanced);
    assert_eq!(counts(&w).await.lines as usize, lines);
}

async fn the_api_serves_declarations(b: Backend) {
    let w = World::new(b).await;
    w.t.app
        .contributions()
        .issue_preetablis(kernel::Registrar::operator(), period(), &[], "t")
        .await
        .unwrap();
    let a1 = w.employer1.affiliate_number.clone();
    let body = serde_json::json!({"affiliate_number": a1, "period": PERIOD});
    let r =
        w.t.post(
            "/api/v1/declarations/preetabli",
            &w.employer1.token,
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["content-disposition"],
        format!("attachment; filename=\"AFFEBDS_{a1}_{PERIOD}.txt\"").as_str()
    );
    let pre = ebds::read_preetabli(r.json.as_str().unwrap().as_bytes()).unwrap();
    // Employer 2 gets the same answer as for an unknown number.
    let r2 =
        w.t.post("/api/v1/declarations/preetabli", &w.employer2.token, body)
            .await;
    assert_eq!(
        (r2.status.as_u16(), r2.json["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    // A broken file: 422 with every error, in the caller's language; nothing recorded.
    let good = bytes_of(&declaration_from(&pre));
    let mut bad = good.clone();
    bad[2 * 262 + 111] = b'9';
    let r =
        w.t.post_bytes("/api/v1/declarations", &w.employer1.token, bad)
            .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json["error"]["code"], "declaration_rejected");
    let d = &r.json["error"]["details"][0];
    assert_eq!(
        (
            d["line"].as_u64(),
            d["record"].as_str(),
            d["field"].as_str(),
            d["rule"].as_str(),
            d["found"].as_str()
        ),
        (
            Some(3),
            Some("B02"),
            Some("N_Jours_Declares"),
            Some("days_range"),
            Some("96")
        )
    );
    assert_eq!(d["message"], "de 0 à 26 jours");
    let details = r.json["error"]["details"].clone();
    // The rejection is kept, with its errors: the employer reads them again later, in the
    // language it asks for; nobody else does (employer 2 and agents get what an unknown
    // employer gets).
    let rejections = |token: String, lang: &'static str| {
        let t = &w.t;
        let body = serde_json::json!({"affiliate_number": w.employer1.affiliate_number});
        async move {
            t.call_with(
                axum::http::Method::POST,
                "/api/v1/declarations/rejections",
                Some(&token),
                Some(body),
                &[("accept-language", lang)],
            )
            .await
        }
    };
    let r = rejections(w.employer1.token.clone(), "fr").await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    assert_eq!(r.json[0]["error_count"], 4);
    assert_eq!(r.json[0]["errors"], details);
    let r = rejections(w.employer1.token.clone(), "ar").await;
    assert_eq!(r.json[0]["errors"][0]["message"], "من 0 إلى 26 يومًا");
    assert_eq!(r.json[0]["errors"][0]["found"], "96");
    for token in [&w.employer2.token, &w.agent] {
        let r = rejections(token.clone(), "fr").await;
        assert_eq!(
            (r.status.as_u16(), r.json["error"]["code"].as_str()),
            (404, Some("not_found"))
        );
    }
    // The right file: 201 with its receipt; again: 200, duplicate.
    let r =
        w.t.post_bytes("/api/v1/declarations", &w.employer1.token, good.clone())
            .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(r.json["status"], "accepted");
    assert_eq!(r.json["total"], 150_760 + 72_184 + 44_960 + 23_069);
    let id = r.json["declaration_id"].as_str().unwrap().to_string();
    let accepted_reply = r.json.clone();
    let again =
        w.t.post_bytes("/api/v1/declarations", &w.employer1.token, good.clone())
            .await;
    assert_eq!(
        (again.status.as_u16(), again.json["status"].as_str()),
        (200, Some("duplicate"))
    );
    // The file back, the receipts, the lines, the statement.
    let r =
        w.t.post(
            "/api/v1/declarations/file",
            &w.employer1.token,
            serde_json::json!({"declaration_id": id}),
        )
        .await;
    assert_eq!(r.json.as_str().unwrap().as_bytes(), good.as_slice());
    let r =
        w.t.post(
            "/api/v1/declarations/file",
            &w.employer2.token,
            serde_json::json!({"declaration_id": id}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r =
        w.t.post(
            "/api/v1/declarations/list",
            &w.employer1.token,
            serde_json::json!({"affiliate_number": a1}),
        )
        .await;
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    assert_eq!(r.json[0]["control_sums"], serde_json::Value::Null);
    let r =
        w.t.post(
            "/api/v1/declarations/lines",
            &w.employer1.token,
            serde_json::json!({"declaration_id": id}),
        )
        .await;
    assert_eq!(r.json.as_array().unwrap().len(), 2);
    // The receipt: the totals and control sums of the upload's answer, for the employer that
    // declared; employer 2 and agents get what an unknown declaration gets.
    let r =
        w.t.post(
            "/api/v1/declarations/receipt",
            &w.employer1.token,
            serde_json::json!({"declaration_id": id}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["control_sums"], accepted_reply["control_sums"]);
    assert_eq!(r.json["total"], accepted_reply["total"]);
    assert_eq!(
        r.json["control_sums"]["total"].as_str().map(str::len),
        Some(19)
    );
    for token in [&w.employer2.token, &w.agent] {
        for path in ["/api/v1/declarations/receipt", "/api/v1/declarations/lines"] {
            let r =
                w.t.post(path, token, serde_json::json!({"declaration_id": id}))
                    .await;
            assert_eq!(
                (r.status.as_u16(), r.json["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{path}"
            );
        }
    }
    for path in ["/api/v1/declarations/list", "/api/v1/statement"] {
        let r =
            w.t.post(
                path,
                &w.employer2.token,
                serde_json::json!({"affiliate_number": a1}),
            )
            .await;
        assert_eq!(r.status, 404, "{path}: {:?}", r.json);
    }
    let r =
        w.t.post(
            "/api/v1/statement",
            &w.employer1.token,
            serde_json::json!({"affiliate_number": a1}),
        )
        .await;
    assert_eq!(r.json["balance"], 150_760 + 72_184 + 44_960 + 23_069);
    // An agent records a payment, once; an employer may not.
    let pay = serde_json::json!({"affiliate_number": a1, "period": PERIOD, "amount": 50_000,
        "bank_reference": "VIR-1", "paid_on": "2026-11-09"});
    let r =
        w.t.post("/api/v1/payments", &w.employer1.token, pay.clone())
            .await;
    assert_eq!(r.status, 403);
    let r = w.t.post("/api/v1/payments", &w.agent, pay.clone()).await;
    assert_eq!(
        (r.status.as_u16(), r.json["status"].as_str()),
        (201, Some("recorded"))
    );
    let r = w.t.post("/api/v1/payments", &w.agent, pay).await;
    assert_eq!(
        (r.status.as_u16(), r.json["status"].as_str()),
        (200, Some("already_recorded"))
    );
    // The insured person reads their career; the officer sees the ledger balance; employers
    // and insured persons do not see the ledger.
    let r =
        w.t.post("/api/v1/career", &w.a.token, serde_json::json!({}))
            .await;
    assert_eq!(r.json.as_array().unwrap().len(), 1);
    assert_eq!(r.json[0]["gross"], 800_000);
    let r =
        w.t.post(
            "/api/v1/career",
            &w.c.token,
            serde_json::json!({"person_id": w.a.id}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r =
        w.t.post("/api/v1/ledger", &w.officer, serde_json::json!({}))
            .await;
    assert_eq!(r.json["balanced"], true);
    let r =
        w.t.post("/api/v1/ledger", &w.employer1.token, serde_json::json!({}))
            .await;
    assert_eq!(r.status, 403);
    // A rectification: A earned 9 000.00. Employer 2 cannot see the declaration; employer 1
    // gets 201 and the new receipt; a second rectification of the same original is a conflict.
    let mut fixed = declaration_from(&pre);
    fixed.lines[0].gross = Centimes(900_000);
    let fixed = bytes_of(&fixed);
    let path = format!("/api/v1/declarations/{id}/rectification");
    let r =
        w.t.post_bytes(&path, &w.employer2.token, fixed.clone())
            .await;
    assert_eq!(r.status, 404);
    let r =
        w.t.post_bytes(&path, &w.employer1.token, fixed.clone())
            .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    assert_eq!(r.json["rectifies"], id.as_str());
    assert_eq!(r.json["total"], 162_870 + 72_184 + 47_220 + 23_069);
    let r = w.t.post_bytes(&path, &w.employer1.token, good).await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let r =
        w.t.post("/api/v1/career", &w.a.token, serde_json::json!({}))
            .await;
    assert_eq!(r.json[0]["gross"], 900_000);
}

async fn late_payment_surcharges_follow_the_table(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    let s = accepted(import(&w, who, &bytes_of(&declaration_from(&pre))).await);
    let total = s.total.0; // 2 907.73 MAD
    let reg = kernel::Registrar::operator();
    let day = |d: u8, m: u8| Date::new(2026, m, d).unwrap();
    // Not late on the due date.
    let run =
        w.t.app
            .ledger()
            .post_surcharges(reg, day(10, 11), "t")
            .await
            .unwrap();
    assert_eq!((run.entries, run.total), (0, Centimes(0)));
    // The day after: 3 % of what is unpaid.
    let run =
        w.t.app
            .ledger()
            .post_surcharges(reg, day(11, 11), "t")
            .await
            .unwrap();
    let first = (total * 300 + 5_000) / 10_000;
    assert_eq!((run.entries, run.total), (1, Centimes(first)));
    // The same day again: nothing more.
    let run =
        w.t.app
            .ledger()
            .post_surcharges(reg, day(11, 11), "t")
            .await
            .unwrap();
    assert_eq!(run.entries, 0);
    // Half is paid; a month and a few days later (2 months started): 3.5 % of the rest, less
    // what was posted; surcharges are not surcharged.
    let pay = NewPayment {
        affiliate_number: number,
        period: period(),
        amount: Centimes(total / 2),
        bank_reference: "VIR-LATE".into(),
        paid_on: day(20, 11),
    };
    w.t.app
        .ledger()
        .record_payment(reg, &pay, "t")
        .await
        .unwrap();
    let unpaid = total - total / 2;
    let target = (unpaid * 350 + 5_000) / 10_000;
    let run =
        w.t.app
            .ledger()
            .post_surcharges(reg, day(15, 12), "t")
            .await
            .unwrap();
    assert_eq!(run.total, Centimes((target - first).max(0)));
    let st = w.t.app.ledger().statement(who, number, "t").await.unwrap();
    assert_eq!(st.periods[0].surcharges, Centimes(first.max(target)));
    assert_eq!(st.periods[0].owed, Centimes(total + first.max(target)));
    assert_eq!(
        st.periods[0].balance,
        Centimes(total + first.max(target) - total / 2)
    );
    let check = w.t.app.ledger().ledger_check(None).await.unwrap();
    assert!(check.balanced);
    assert!(
        check
            .accounts
            .iter()
            .any(|a| a.account.name() == "surcharge" && a.balance == Centimes(-first.max(target)))
    );
}

async fn nobody_is_declared_twice_and_rejected_files_create_nobody(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, _) = employer(&w, 1).await;
    // A, known on the préétabli, again as an entrant under A's CIN: refused.
    let mut d = declaration_from(&pre);
    d.entrants.push(Entrant {
        immatriculation: None,
        name: "BENNANI SALMA".into(),
        cin: w.a.cin.clone(),
        days: 5,
        gross: Centimes(100_000),
        capped: Centimes(100_000),
    });
    let got = errors(import(&w, who, &bytes_of(&d)).await);
    assert_eq!(
        got,
        vec![(
            6,
            "B04".into(),
            "N_Num_Assure".into(),
            "declared_twice".into()
        )]
    );
    // In one batch: a good file, and a bad one with a new entrant. The bad one creates nobody.
    let before = counts(&w).await;
    let mut bad = declaration_from(&pre);
    bad.form = Form::Complementary(1);
    bad.lines.clear();
    bad.entrants.push(Entrant {
        immatriculation: None,
        name: "PERSONNE NOUVELLE".into(),
        cin: "QE424242".into(),
        days: 5,
        gross: Centimes(100_000),
        capped: Centimes(100_000),
    });
    bad.entrants.push(Entrant {
        immatriculation: Some(199_999_999),
        name: "INCONNU".into(),
        cin: String::new(),
        days: 5,
        gross: Centimes(100_000),
        capped: Centimes(100_000),
    });
    let good = bytes_of(&declaration_from(&pre));
    let out =
        w.t.app
            .contributions()
            .import_declarations(
                who,
                vec![
                    ImportFile {
                        name: "good".into(),
                        bytes: good,
                    },
                    ImportFile {
                        name: "bad".into(),
                        bytes: bytes_of(&bad),
                    },
                ],
                Lang::Fr,
                "t",
            )
            .await
            .unwrap();
    assert!(out[0].is_accepted());
    assert!(matches!(out[1], ImportOutcome::Rejected { .. }));
    let after = counts(&w).await;
    assert_eq!(
        after.persons, before.persons,
        "the rejected file created nobody"
    );
    assert_eq!(after.lines, before.lines + 2);
    // A complementary declaration naming someone the main one declared: refused.
    let mut again = declaration_from(&pre);
    again.form = Form::Complementary(1);
    again.lines.clear();
    again.entrants.push(Entrant {
        immatriculation: Some(w.b.immatriculation.parse().unwrap()),
        name: "ALAOUI YOUSSEF".into(),
        cin: w.b.cin.clone(),
        days: 3,
        gross: Centimes(50_000),
        capped: Centimes(50_000),
    });
    let got = errors(import(&w, who, &bytes_of(&again)).await);
    assert_eq!(
        got,
        vec![(
            5,
            "E04".into(),
            "N_Num_Assure".into(),
            "declared_twice".into()
        )]
    );
    // An entrant nobody confirmed yet counts as declared for the period too (by the CIN
    // declared): once in E1, refused in E2.
    let newcomer = Entrant {
        immatriculation: None,
        name: "PERSONNE NOUVELLE".into(),
        cin: "QE424242".into(),
        days: 5,
        gross: Centimes(100_000),
        capped: Centimes(100_000),
    };
    let mut e1 = again.clone();
    e1.entrants = vec![newcomer.clone()];
    accepted(import(&w, who, &bytes_of(&e1)).await);
    let mut e2 = e1.clone();
    e2.form = Form::Complementary(2);
    e2.entrants[0].days = 4;
    let got = errors(import(&w, who, &bytes_of(&e2)).await);
    assert_eq!(
        got,
        vec![(
            5,
            "E04".into(),
            "N_Num_Assure".into(),
            "declared_twice".into()
        )]
    );
}

async fn agents_read_totals_not_files_and_payments_are_checked(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    let s = accepted(import(&w, who, &bytes_of(&declaration_from(&pre))).await);
    let agent = principal(&w, "agent-1", Role::Agent, Binding::None).await;
    let as_agent = w.t.app.kernel().declarant(&agent).unwrap();
    // Totals yes; names and salaries no; no uploads.
    assert_eq!(
        w.t.app
            .ledger()
            .statement(as_agent, number, "t")
            .await
            .unwrap()
            .owed,
        s.total
    );
    assert_eq!(
        w.t.app
            .contributions()
            .declarations_of(as_agent, number, "t")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        w.t.app
            .contributions()
            .declaration_file(as_agent, s.declaration_id, "t")
            .await
            .is_err()
    );
    assert!(
        w.t.app
            .contributions()
            .declaration_lines(as_agent, s.declaration_id, "t")
            .await
            .is_err()
    );
    assert!(
        w.t.app
            .contributions()
            .preetabli_file(as_agent, number, period(), "t")
            .await
            .is_err()
    );
    assert!(matches!(
        import_result(&w, as_agent, &bytes_of(&declaration_from(&pre))).await,
        Err(kernel::AppError::Denied(_))
    ));
    // Every refusal is audited.
    let events =
        w.t.app
            .kernel()
            .store()
            .audit_events(0, 10_000)
            .await
            .unwrap();
    let denied = events
        .iter()
        .filter(|(_, e)| e.outcome.starts_with("deny") && e.action.contains("access"))
        .count();
    assert_eq!(denied, 3);
    // Payments: a reference with a quote is refused; the same reference for another amount is
    // a conflict, never a silent loss.
    let reg = kernel::Registrar::operator();
    let pay = |reference: &str, amount: i64| NewPayment {
        affiliate_number: number,
        period: period(),
        amount: Centimes(amount),
        bank_reference: reference.into(),
        paid_on: Date::new(2026, 11, 5).unwrap(),
    };
    assert!(matches!(
        w.t.app
            .ledger()
            .record_payment(reg, &pay("VIR\",\"x", 100), "t")
            .await,
        Err(kernel::AppError::Invalid(_))
    ));
    w.t.app
        .ledger()
        .record_payment(reg, &pay("VIR-7", 100), "t")
        .await
        .unwrap();
    assert!(matches!(
        w.t.app
            .ledger()
            .record_payment(reg, &pay("VIR-7", 200), "t")
            .await,
        Err(kernel::AppError::Conflict(Clash::Payment))
    ));
    assert!(w.t.app.ledger().ledger_check(None).await.unwrap().balanced);
}

async fn import_result(
    w: &World,
    who: Declarant,
    bytes: &[u8],
) -> Result<Vec<ImportOutcome>, kernel::AppError> {
    w.t.app
        .contributions()
        .import_declarations(
            who,
            vec![ImportFile {
                name: "DS.txt".into(),
                bytes: bytes.to_vec(),
            }],
            Lang::Fr,
            "t",
        )
        .await
}

async fn try_rectify(
    w: &World,
    who: Declarant,
    id: i64,
    bytes: &[u8],
) -> Result<ImportOutcome, kernel::AppError> {
    w.t.app
        .contributions()
        .rectify_declaration(
            who,
            id,
            ImportFile {
                name: "DS.txt".into(),
                bytes: bytes.to_vec(),
            },
            Lang::Fr,
            "t",
        )
        .await
}

async fn rectify(w: &World, who: Declarant, id: i64, bytes: &[u8]) -> ImportOutcome {
    try_rectify(w, who, id, bytes).await.unwrap()
}

async fn a_rectification_replaces_a_declaration_and_keeps_the_history(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    let main_bytes = bytes_of(&declaration_from(&pre));
    let main = accepted(import(&w, who, &main_bytes).await);
    // A complementary declaration of the period: an entrant, who stays declared.
    let e1_entrant = Entrant {
        immatriculation: None,
        name: "NOUVEAU SALARIE".into(),
        cin: "QE100001".into(),
        days: 13,
        gross: Centimes(200_000),
        capped: Centimes(200_000),
    };
    let e1_file = Declaration {
        form: Form::Complementary(1),
        transfer_id: pre.transfer_id,
        identity: pre.identity.clone(),
        lines: vec![],
        entrants: vec![e1_entrant.clone()],
        layout: ebds::Layout::default(),
    };
    let e1 = accepted(import(&w, who, &bytes_of(&e1_file)).await);
    // The main declaration is rectified: A earned 9 000.00, not 8 000.00.
    let mut fixed = declaration_from(&pre);
    fixed.lines[0].gross = Centimes(900_000);
    let fixed_bytes = bytes_of(&fixed);
    let before = counts(&w).await;
    // Nobody else may rectify it: not another employer (as if it did not exist), not an agent.
    let (_, other, _) = employer(&w, 2).await;
    assert!(matches!(
        try_rectify(&w, other, main.declaration_id, &fixed_bytes).await,
        Err(kernel::AppError::NotFound(Missing::Declaration))
    ));
    let agent = principal(&w, "agent-r", Role::Agent, Binding::None).await;
    assert!(matches!(
        try_rectify(
            &w,
            w.t.app.kernel().declarant(&agent).unwrap(),
            main.declaration_id,
            &fixed_bytes
        )
        .await,
        Err(kernel::AppError::Denied(_))
    ));
    // A file for another form is refused with the exact error, and so is one declaring the
    // complementary declaration's entrant again; neither writes anything.
    let e2 = Declaration {
        form: Form::Complementary(2),
        entrants: vec![Entrant {
            cin: "QE100009".into(),
            ..e1_entrant.clone()
        }],
        ..e1_file.clone()
    };
    let got = errors(rectify(&w, who, main.declaration_id, &bytes_of(&e2)).await);
    assert_eq!(
        got,
        vec![(1, "E00".into(), "L_Cat".into(), "rectifies_another".into())]
    );
    let mut twice = fixed.clone();
    twice.entrants.push(e1_entrant.clone());
    let got = errors(rectify(&w, who, main.declaration_id, &bytes_of(&twice)).await);
    assert_eq!(
        got,
        vec![(
            6,
            "B04".into(),
            "N_Num_Assure".into(),
            "declared_twice".into()
        )]
    );
    assert_eq!(counts(&w).await, before);
    // The rectification is accepted. 9 000.00: employer 12.11 % of 9 000.00 + 8.98 % of
    // 6 000.00 = 1 628.70, employee 2.26 % of 9 000.00 + 4.48 % of 6 000.00 = 472.20; B's
    // line is unchanged (721.84 and 230.69).
    let r = accepted(rectify(&w, who, main.declaration_id, &fixed_bytes).await);
    assert_eq!(r.rectifies, Some(main.declaration_id.to_string()));
    assert_eq!(r.employer_share, Centimes(162_870 + 72_184));
    assert_eq!(r.employee_share, Centimes(47_220 + 23_069));
    // The period now owes the rectified declaration and the complementary one, no more.
    let st = w.t.app.ledger().statement(who, number, "t").await.unwrap();
    assert_eq!(st.periods[0].owed, Centimes(r.total.0 + e1.total.0));
    let check = w.t.app.ledger().ledger_check(None).await.unwrap();
    assert!(check.balanced, "{check:?}");
    assert_eq!(
        balance(&check, "receivable"),
        Some(Centimes(r.total.0 + e1.total.0))
    );
    // The history: the original is listed as rectified, and comes back byte for byte.
    let list =
        w.t.app
            .contributions()
            .declarations_of(who, number, "t")
            .await
            .unwrap();
    let original = list
        .iter()
        .find(|d| d.declaration_id == main.declaration_id)
        .unwrap();
    assert_eq!(original.rectified_by, Some(r.declaration_id.to_string()));
    assert_eq!(original.total, main.total);
    assert_eq!(list.len(), 3);
    let back =
        w.t.app
            .contributions()
            .declaration_file(who, main.declaration_id, "t")
            .await
            .unwrap();
    assert_eq!(back, main_bytes);
    let back =
        w.t.app
            .contributions()
            .declaration_file(who, r.declaration_id, "t")
            .await
            .unwrap();
    assert_eq!(back, fixed_bytes);
    // A's career holds the rectified month only.
    let a = insured(&w, 0, &w.a.immatriculation).await;
    let career = w.t.app.contributions().career(&a, None, "t").await.unwrap();
    assert_eq!(career.len(), 1);
    assert_eq!(career[0].gross, Centimes(900_000));
    assert_eq!(career[0].employer_share, Centimes(162_870));
    // The same file again changes nothing, also sent again for the original (a retry after a
    // lost answer); the original cannot be rectified twice.
    let after = counts(&w).await;
    assert!(matches!(
        rectify(&w, who, r.declaration_id, &fixed_bytes).await,
        ImportOutcome::Duplicate(_)
    ));
    assert!(matches!(
        rectify(&w, who, main.declaration_id, &fixed_bytes).await,
        ImportOutcome::Duplicate(_)
    ));
    assert!(matches!(
        try_rectify(&w, who, main.declaration_id, &main_bytes).await,
        Err(kernel::AppError::Conflict(Clash::Rectified))
    ));
    assert_eq!(counts(&w).await, after);
    // A rectification can be rectified in turn: back to 8 000.00, the original's amounts.
    let again = accepted(rectify(&w, who, r.declaration_id, &main_bytes).await);
    assert_eq!(again.total, main.total);
    let st = w.t.app.ledger().statement(who, number, "t").await.unwrap();
    assert_eq!(st.periods[0].owed, Centimes(main.total.0 + e1.total.0));
    assert!(w.t.app.ledger().ledger_check(None).await.unwrap().balanced);
    // A complementary declaration is rectified too: its entrant earned 2 500.00 (employer
    // 21.09 % = 527.25, employee 6.74 % = 168.50), and is not "declared twice" by it.
    let e1_fixed = Declaration {
        entrants: vec![Entrant {
            gross: Centimes(250_000),
            capped: Centimes(250_000),
            ..e1_entrant.clone()
        }],
        ..e1_file.clone()
    };
    let before_r1 = counts(&w).await;
    let r1 = accepted(rectify(&w, who, e1.declaration_id, &bytes_of(&e1_fixed)).await);
    assert_eq!(
        (r1.form, r1.employer_share, r1.employee_share),
        (1, Centimes(52_725), Centimes(16_850))
    );
    // The entrant, immatriculated and employed by the original, is neither immatriculated nor
    // employed a second time.
    let after_r1 = counts(&w).await;
    assert_eq!(
        (after_r1.persons, after_r1.employments),
        (before_r1.persons, before_r1.employments)
    );
    let st = w.t.app.ledger().statement(who, number, "t").await.unwrap();
    assert_eq!(st.periods[0].owed, Centimes(main.total.0 + r1.total.0));
    let check = w.t.app.ledger().ledger_check(None).await.unwrap();
    assert!(check.balanced, "{check:?}");
    // The branches hold what the declarations in force declared, to the centime: each
    // rectification took back exactly what its original's transaction had allocated. The
    // employers' share of long-term benefits: 7.93 % of 6 000.00 and 3 422.72 (the main
    // declaration, as first sent) and of 2 500.00 (the rectified complementary one).
    assert_eq!(balance(&check, "contribution:declared"), Some(Centimes(0)));
    assert_eq!(
        balance(&check, "contribution:long_term:employer"),
        Some(Centimes(-(47_580 + 27_142 + 19_825)))
    );
    assert_eq!(branches_total(&check), -(main.total.0 + r1.total.0));
    // In the database, a declaration and its lines cannot be changed or removed, except the
    // one move from accepted to rectified (and a re-encryption to a newer key: keys.rs).
    for sql in [
        "UPDATE declarations SET gross = gross + 1",
        "UPDATE declarations SET branch_shares = NULL",
        "UPDATE declarations SET status = 'accepted'",
        "DELETE FROM declarations",
        "UPDATE declaration_line_blocks SET data = substr(data, 2)",
        "DELETE FROM declaration_line_blocks",
    ] {
        assert!(w.t.raw_execute(sql, &[]).await.is_err(), "{sql}");
    }
    if b == Backend::Postgres {
        for sql in [
            "TRUNCATE declarations CASCADE",
            "TRUNCATE declaration_line_blocks",
        ] {
            assert!(w.t.raw_execute(sql, &[]).await.is_err(), "{sql}");
        }
    }
}

async fn a_person_who_left_is_not_on_the_next_preetabli(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    // B left during the month (SO): their last line, then their employment ends with October.
    let mut d = declaration_from(&pre);
    d.lines[1].situation = Situation::Left;
    d.lines[1].days = 12;
    let left = format!("{:09}", d.lines[1].employee.immatriculation);
    accepted(import(&w, who, &bytes_of(&d)).await);
    let listed: Vec<String> = next_preetabli(&w, who, number)
        .await
        .employees
        .iter()
        .map(|e| format!("{:09}", e.immatriculation))
        .collect();
    assert_eq!(listed.len(), 1);
    assert!(!listed.contains(&left), "{listed:?}");
    // Their October line stays in their career.
    let imma = if left == w.a.immatriculation {
        &w.a.immatriculation
    } else {
        &w.b.immatriculation
    };
    let p = insured(&w, 1, imma).await;
    let career = w.t.app.contributions().career(&p, None, "t").await.unwrap();
    assert_eq!(career.len(), 1);
    assert_eq!((career[0].situation.as_str(), career[0].days), ("SO", 12));
}

/// Honeytokens: a decoy person and employer, registered like anyone; reading the person through
/// the gate, or declaring it in an e-BDS file, locks the principal and raises an alert. Nothing
/// in the database marks them.
async fn a_decoy_read_or_declared_locks_the_principal(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    // Employer 2's main declaration, accepted before any decoy exists (rectified below).
    let (p2, who2, number2) = employer(&w, 2).await;
    let pre2 = preetabli_of(&w, who2, number2, period()).await;
    let original = accepted(import(&w, who2, &bytes_of(&declaration_from(&pre2))).await);
    let store = w.t.app.kernel().store().clone();
    let schema_before = store.schema().await.unwrap();
    let decoy: registry::NewPerson =
        serde_json::from_value(crate::person_json("ZH7001", "BERRADA", "Ilyas")).unwrap();
    let decoy_employer: registry::NewEmployer = serde_json::from_value(serde_json::json!({
        "name": "ATLAS DECOR SARL", "activity": "Commerce", "city": "Fes", "ice": "001525480000077"
    }))
    .unwrap();
    let (decoy_employers, decoys) =
        w.t.app
            .registry()
            .seed_honeytokens(&[decoy_employer], std::slice::from_ref(&decoy))
            .await
            .unwrap();
    assert_eq!((decoy_employers.len(), decoys.len()), (1, 1));
    // No table or column says which records are decoys: the schema is the same, and the list
    // is in the key directory, as pseudonyms.
    assert_eq!(store.schema().await.unwrap(), schema_before);
    let list = std::fs::read_to_string(w.t.dir.path().join("keys/honeytokens")).unwrap();
    assert_eq!(list.lines().count(), 2);
    assert!(!list.contains("ZH7001") && !list.contains("BERRADA"));

    // An agent who looks the decoy up: refused like any refusal, and locked.
    let r = w
        .read(
            &w.agent,
            serde_json::json!({"cin": "ZH7001", "purpose": "registration"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.json["error"]["code"].as_str()),
        (403, Some("access_denied"))
    );
    assert_eq!(w.t.alerts("honeytoken").await, 1);
    let r = w
        .read(
            &w.agent,
            serde_json::json!({"cin": w.a.cin, "purpose": "registration"}),
        )
        .await;
    assert_eq!(r.status, 403, "locked: nothing more");

    // An employer whose file declares the decoy as an entrant: nothing of it is taken, and the
    // sender is locked.
    let (p, who, _) = employer(&w, 1).await;
    let mut d = declaration_from(&pre);
    d.entrants.push(decoy_entrant());
    let before = counts(&w).await;
    let got = import_result(&w, who, &bytes_of(&d)).await;
    assert!(matches!(
        got,
        Err(kernel::AppError::Denied(domain::DenyReason::Honeytoken))
    ));
    assert_eq!(counts(&w).await, before);
    assert_eq!(w.t.alerts("honeytoken").await, 2);
    assert!(
        w.t.app
            .kernel()
            .principal(p.id)
            .await
            .unwrap()
            .unwrap()
            .locked
    );

    // A rectification naming the decoy: the same.
    let mut r = declaration_from(&pre2);
    r.entrants.push(decoy_entrant());
    let got = try_rectify(&w, who2, original.declaration_id, &bytes_of(&r)).await;
    assert!(matches!(
        got,
        Err(kernel::AppError::Denied(domain::DenyReason::Honeytoken))
    ));
    assert_eq!(counts(&w).await, before);
    assert_eq!(w.t.alerts("honeytoken").await, 3);
    assert!(
        w.t.app
            .kernel()
            .principal(p2.id)
            .await
            .unwrap()
            .unwrap()
            .locked
    );

    // The registry's commands too: an agent opening a case on the decoy, another linking it to
    // an employer, a third linking someone to the decoy employer, a fourth changing the decoy's
    // contact data: each refused like any refusal, locked, alerted.
    let decoy_number = decoys[0].immatriculation.clone();
    let decoy_affiliate = decoy_employers[0].affiliate_number.clone();
    let calls: [(&str, serde_json::Value); 4] = [
        (
            "/api/v1/cases",
            serde_json::json!({"immatriculation": decoy_number, "reason": "verification"}),
        ),
        (
            "/api/v1/employments",
            serde_json::json!({"affiliate_number": w.employer1.affiliate_number, "immatriculation": decoy_number, "start_date": "2026-01-01"}),
        ),
        (
            "/api/v1/employments",
            serde_json::json!({"affiliate_number": decoy_affiliate, "immatriculation": w.d.immatriculation, "start_date": "2026-01-01"}),
        ),
        (
            "/api/v1/persons/contact",
            serde_json::json!({"cin": "ZH7001", "email": "x@example.org"}),
        ),
    ];
    for (k, (path, body)) in calls.into_iter().enumerate() {
        let (agent, token) =
            w.t.login(&format!("agent-decoy-{k}"), Role::Agent, Binding::None)
                .await;
        let r = w.t.post(path, &token, body).await;
        assert_eq!(
            (r.status.as_u16(), r.json["error"]["code"].as_str()),
            (403, Some("access_denied")),
            "{path}"
        );
        assert_eq!(w.t.alerts("honeytoken").await, 4 + k, "{path}");
        assert!(
            w.t.app
                .kernel()
                .principal(agent.id)
                .await
                .unwrap()
                .unwrap()
                .locked
        );
    }
    assert_eq!(counts(&w).await, before);

    // A B02 line for the decoy (on no préétabli: an error for the sender anyway) raises the
    // alert too; the operator's batch is refused whole.
    let mut d = declaration_from(&pre);
    let mut line = d.lines[0].clone();
    line.employee.immatriculation = decoys[0].immatriculation.parse().unwrap();
    d.lines.push(line);
    let got = import_result(&w, Declarant::operator(), &bytes_of(&d)).await;
    assert!(matches!(
        got,
        Err(kernel::AppError::Denied(domain::DenyReason::Honeytoken))
    ));
    assert_eq!(w.t.alerts("honeytoken").await, 8);
    assert_eq!(counts(&w).await, before);

    // An agent asking for the decoy employer's statement: locked, alerted.
    let (agent, _) =
        w.t.login("agent-statement", Role::Agent, Binding::None)
            .await;
    let got =
        w.t.app
            .ledger()
            .statement(
                w.t.app.kernel().declarant(&agent).unwrap(),
                decoy_affiliate.parse().unwrap(),
                "t",
            )
            .await;
    assert!(matches!(
        got,
        Err(kernel::AppError::Denied(domain::DenyReason::Honeytoken))
    ));
    assert_eq!(w.t.alerts("honeytoken").await, 9);
    assert!(
        w.t.app
            .kernel()
            .principal(agent.id)
            .await
            .unwrap()
            .unwrap()
            .locked
    );
    // Someone enrolling as the decoy gets the same answer as anyone (a token; no code is
    // sent), and the alert is raised.
    let token =
        w.t.app
            .identity()
            .enrol_insured("ZH7001", "correct horse battery staple 7", Lang::Fr, "t")
            .await
            .unwrap();
    assert!(!token.is_empty());
    for _ in 0..100 {
        if w.t.alerts("honeytoken").await == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(w.t.alerts("honeytoken").await, 10);
    // An agent recording a payment for the decoy employer: locked, alerted, nothing recorded.
    let (agent, _) = w.t.login("agent-payment", Role::Agent, Binding::None).await;
    let got =
        w.t.app
            .ledger()
            .record_payment(
                w.t.app.kernel().registrar(&agent).unwrap(),
                &NewPayment {
                    affiliate_number: decoy_affiliate.parse().unwrap(),
                    period: period(),
                    amount: Centimes(100_000),
                    bank_reference: "VIR-2026-11-DECOY1".into(),
                    paid_on: Date::new(2026, 11, 8).unwrap(),
                },
                "t",
            )
            .await;
    assert!(matches!(
        got,
        Err(kernel::AppError::Denied(domain::DenyReason::Honeytoken))
    ));
    assert_eq!(w.t.alerts("honeytoken").await, 11);
    assert!(
        w.t.app
            .kernel()
            .principal(agent.id)
            .await
            .unwrap()
            .unwrap()
            .locked
    );
    assert_eq!(counts(&w).await, before);
    // An insured person asking for the decoy's career: careers go through the gate, so the
    // same.
    let c = insured(&w, 2, &w.c.immatriculation).await;
    let got =
        w.t.app
            .contributions()
            .career(&c, Some(decoys[0].person_id), "t")
            .await;
    assert!(matches!(
        got,
        Err(kernel::AppError::Denied(domain::DenyReason::Honeytoken))
    ));
    assert_eq!(w.t.alerts("honeytoken").await, 12);
    assert!(
        w.t.app
            .kernel()
            .principal(c.id)
            .await
            .unwrap()
            .unwrap()
            .locked
    );
}

/// The decoy of `a_decoy_read_or_declared_locks_the_principal`, declared as an entrant.
fn decoy_entrant() -> Entrant {
    Entrant {
        immatriculation: None,
        name: "BERRADA ILYAS".into(),
        cin: "ZH7001".into(),
        days: 26,
        gross: Centimes(400_000),
        capped: Centimes(400_000),
    }
}

/// A préétabli as issued before migration 0015 (employees NULL, one ciphertext per employee in
/// `preetabli_lines`) still downloads byte for byte and takes declarations; one missing line
/// makes it corrupt, not shorter.
async fn a_preetabli_issued_before_its_employees_were_sealed_whole_is_still_read(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, number) = employer(&w, 1).await;
    let issued =
        w.t.app
            .contributions()
            .preetabli_file(who, number, period(), "t")
            .await
            .unwrap();
    let store = w.t.app.kernel().store();
    let employer_id = store
        .employers_where(true, &[i64::from(number)])
        .await
        .unwrap()[0]
        .id;
    let row = store
        .preetablis(&[employer_id], 202610)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(row.employees.is_some());
    // The old format, written as the previous version did: a keyring of the test's own,
    // from the key directory and the wrapped data keys.
    let kek = vault::KeyFileKek::open(
        &vault::KeyDir::open(&w.t.dir.path().join("keys")).unwrap(),
        std::sync::Arc::new(vault::OsRandom),
    )
    .unwrap();
    let keys = store.data_keys().await.unwrap();
    let wrapped: Vec<vault::WrappedKey> = keys
        .iter()
        .map(|k| vault::WrappedKey {
            id: k.id,
            wrapped: k.wrapped.clone(),
        })
        .collect();
    let line_column = vault::Column {
        table: "preetabli_lines",
        column: "data",
    };
    let ring = vault::Keyring::open(
        &kek,
        &wrapped,
        keys.iter()
            .filter(|k| k.primary_since.is_some())
            .map(|k| k.id)
            .max()
            .unwrap(),
        &[line_column],
        &[],
        std::sync::Arc::new(vault::OsRandom),
    )
    .unwrap();
    let person_of = |imma: u32| {
        [&w.a, &w.b, &w.c, &w.d]
            .into_iter()
            .find(|p| p.immatriculation.parse::<u32>().unwrap() == imma)
            .map(|p| p.id.parse::<i64>().unwrap())
            .unwrap()
    };
    let first_line = 900_000i64;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (k, e) in pre.employees.iter().enumerate() {
        let id = first_line + k as i64;
        let text = [
            e.immatriculation.to_string(),
            e.name.clone(),
            e.children.to_string(),
            e.af_payable.0.to_string(),
            e.af_deductible.0.to_string(),
            e.af_net.0.to_string(),
        ]
        .join("\u{1f}");
        let data = ring.encrypt(line_column, id, text.as_bytes()).unwrap();
        let blob = match b {
            Backend::Sqlite => format!("X'{}'", hex(&data)),
            Backend::Postgres => format!("'\\x{}'::bytea", hex(&data)),
        };
        let sql = format!(
            "INSERT INTO preetabli_lines (id, preetabli_id, person_id, data) VALUES ($1, $2, $3, {blob})"
        );
        w.t.raw_execute(&sql, &[id, row.id, person_of(e.immatriculation)])
            .await
            .unwrap();
    }
    w.t.raw_execute(
        "UPDATE preetablis SET employees = NULL, first_line = $1 WHERE id = $2",
        &[first_line, row.id],
    )
    .await
    .unwrap();
    assert_eq!(
        w.t.app
            .contributions()
            .preetabli_file(who, number, period(), "t")
            .await
            .unwrap(),
        issued
    );
    accepted(import(&w, who, &bytes_of(&declaration_from(&pre))).await);
    // A line lost: the préétabli is corrupt, not shorter.
    w.t.raw_execute("DELETE FROM preetabli_lines WHERE id = $1", &[first_line])
        .await
        .unwrap();
    assert!(matches!(
        w.t.app
            .contributions()
            .preetabli_file(who, number, period(), "t")
            .await,
        Err(kernel::AppError::Store(store::StoreError::Corrupt(_)))
    ));
}

/// `daman ebds import` prepares a batch while the two before it may not be committed yet (one
/// being written, one waiting for the writer). Someone new, declared by employer 1 in the first
/// batch and by employer 2 in the third, is created once and employed by both; checked against
/// the batch just before alone, the third batch would create them again and fail to commit.
async fn a_batch_is_checked_against_every_batch_not_yet_written(b: Backend) {
    let w = World::new(b).await;
    let pre1 = preetabli(&w).await;
    let (_, who2, n2) = employer(&w, 2).await;
    let pre2 = preetabli_of(&w, who2, n2, period()).await;
    let newcomer = |cin: &str| Entrant {
        immatriculation: None,
        name: "NOUVELLE RECRUE".into(),
        cin: cin.into(),
        days: 10,
        gross: Centimes(300_000),
        capped: Centimes(300_000),
    };
    // Employer 1's main declaration with a newcomer; its E1 with another (acceptable only
    // after the main one, not yet written); its E2 with the first newcomer again (declared in
    // the main one, not yet written); employer 2's main declaration with the first newcomer
    // (another employer's claim).
    let mut first = declaration_from(&pre1);
    first.entrants.push(newcomer("QE777001"));
    let complementary = |n: u8, cin: &str| {
        let mut d = declaration_from(&pre1);
        d.form = Form::Complementary(n);
        d.lines.clear();
        d.entrants.push(newcomer(cin));
        d
    };
    let second = complementary(1, "QE777002");
    let third = complementary(2, "QE777001");
    let mut fourth = declaration_from(&pre2);
    fourth.entrants.push(newcomer("QE777001"));
    let app = &w.t.app;
    let parsed = |d: &Declaration, name: &str| {
        app.contributions().parse_files(vec![ImportFile {
            name: name.into(),
            bytes: bytes_of(d),
        }])
    };
    let before = counts(&w).await;
    let who = Declarant::operator();
    let mut ids = contributions::IdPool::blocks(1 << 20);
    let mut unwritten = contributions::Unwritten::default();
    let mut prepared = Vec::new();
    for (d, name) in [(&first, "1"), (&second, "2"), (&third, "3"), (&fourth, "4")] {
        let mut p = app
            .contributions()
            .prepare_import(
                who,
                parsed(d, name).await.unwrap(),
                Lang::Fr,
                &unwritten,
                &mut ids,
            )
            .await
            .unwrap();
        unwritten.push(std::mem::take(&mut p.in_flight));
        prepared.push(p);
    }
    // The E1, checked against nothing not yet written: no main declaration yet.
    let alone = app
        .contributions()
        .prepare_import(
            who,
            parsed(&second, "2").await.unwrap(),
            Lang::Fr,
            &contributions::Unwritten::default(),
            &mut ids,
        )
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for p in prepared.drain(..) {
        outcomes.extend(
            app.contributions()
                .commit_import(who, p, "t")
                .await
                .unwrap(),
        );
    }
    let alone = app
        .contributions()
        .commit_import(who, alone, "t")
        .await
        .unwrap();
    assert_eq!(
        errors(alone.into_iter().next().unwrap()),
        vec![(
            1,
            "E00".into(),
            "L_Cat".into(),
            "main_declaration_missing".into()
        )]
    );
    let accepted: Vec<bool> = outcomes.iter().map(ImportOutcome::is_accepted).collect();
    assert_eq!(accepted, [true, true, false, true], "{outcomes:#?}");
    assert_eq!(
        errors(outcomes.remove(2)),
        vec![(
            5,
            "E04".into(),
            "N_Num_Assure".into(),
            "declared_twice".into()
        )]
    );
    let after = counts(&w).await;
    // Three claims (requests for an agent); nobody created, nobody employed.
    assert_eq!(
        (after.persons, after.employments, after.claims),
        (before.persons, before.employments, before.claims + 3)
    );
}

/// The check is not a formality: an entry whose postings do not sum to zero, or an amount
/// declared and never allocated to the branches, makes the ledger unbalanced, for the operator
/// (`daman ebds check`) and in the whole-fund view agents read.
async fn the_ledger_check_finds_what_does_not_balance(b: Backend) {
    let w = World::new(b).await;
    let pre = preetabli(&w).await;
    let (_, who, _) = employer(&w, 1).await;
    accepted(import(&w, who, &bytes_of(&declaration_from(&pre))).await);
    let view = |token: String| {
        let t = &w.t;
        async move {
            let r = t
                .post("/api/v1/ledger", &token, serde_json::json!({}))
                .await;
            assert_eq!(r.status, 200, "{:?}", r.json);
            (
                r.json["balanced"].clone(),
                r.json["unbalanced_entries"].clone(),
            )
        }
    };
    assert_eq!(
        view(w.agent.clone()).await,
        (serde_json::json!(true), serde_json::json!(0))
    );
    // Entries written behind daman's back (postings are append-only, not unforgeable).
    let receivable = "(SELECT id FROM ledger_accounts WHERE name = 'receivable')";
    let declared = "(SELECT id FROM ledger_accounts WHERE name = 'contribution:declared')";
    let forge = |id: i64, postings: Vec<(&'static str, i64)>| {
        let t = &w.t;
        async move {
            t.raw_execute(
                &format!(
                    "INSERT INTO ledger_entries (id, key, kind, employer_id, period, at) \
                     VALUES ({id}, 'forged:{id}', 'declaration', NULL, 202610, 0)"
                ),
                &[],
            )
            .await
            .unwrap();
            for (account, amount) in postings {
                t.raw_execute(
                    &format!(
                        "INSERT INTO ledger_postings (entry_id, account_id, amount) \
                         VALUES ({id}, {account}, {amount})"
                    ),
                    &[],
                )
                .await
                .unwrap();
            }
        }
    };
    // Declared and owed, balanced as an entry, but never allocated to the branches.
    forge(
        9_000_000_001,
        vec![(receivable, 10_000), (declared, -10_000)],
    )
    .await;
    let check = w.t.app.ledger().ledger_check(None).await.unwrap();
    assert_eq!((check.balanced, check.unbalanced_entries), (false, 0));
    assert_eq!(
        balance(&check, "contribution:declared"),
        Some(Centimes(-10_000))
    );
    // One posting alone: the entry itself does not balance.
    forge(9_000_000_002, vec![(receivable, 55)]).await;
    let check = w.t.app.ledger().ledger_check(None).await.unwrap();
    assert_eq!((check.balanced, check.unbalanced_entries), (false, 1));
    assert_eq!(
        view(w.agent.clone()).await,
        (serde_json::json!(false), serde_json::json!(1))
    );
    // Employers and insured persons do not see the whole fund.
    for token in [&w.employer1.token, &w.a.token] {
        let r =
            w.t.post("/api/v1/ledger", token, serde_json::json!({}))
                .await;
        assert_eq!(r.status, 403);
    }
}
