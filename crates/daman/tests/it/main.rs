//! daman's integration tests: one binary, every test on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod accesses;
mod api;
mod at_rest;
mod audit_log;
mod budgets;
mod cli;
mod declarations;
mod eid;
mod entrants;
mod keys;
mod login;
mod registry;
mod renumber;
mod rules;
mod schema;

use domain::Role;
use kernel::Binding;
use serde_json::{Value, json};
use testkit::TestApp;

/// Generates `<name>::sqlite` and `<name>::postgres` tests from `async fn <name>(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(store::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(store::Backend::Postgres).await
            }
        }
    )* };
}

/// A small registry: two employers, four persons (A and B work for employer 1, C for employer 2,
/// D for nobody), and tokens for an agent, an officer, persons A and B, and each employer.
pub struct World {
    pub t: TestApp,
    pub agent: String,
    pub officer: String,
    pub a: Person,
    pub b: Person,
    pub c: Person,
    pub d: Person,
    pub employer1: Employer,
    pub employer2: Employer,
}

pub struct Person {
    pub id: String,
    pub immatriculation: String,
    pub cin: String,
    pub token: String,
}

pub struct Employer {
    pub affiliate_number: String,
    pub token: String,
}

pub fn person_json(cin: &str, last: &str, first: &str) -> Value {
    json!({
        "cin": cin, "last_name": last, "first_name": first,
        "last_name_ar": "بناني", "first_name_ar": "سلمى", "birth_date": "1988-04-12",
        "phone": "0600123456", "email": "salma@example.org", "address": "N° 12, Rue Ibn Sina, Rabat",
        "rib": "999001000001205000534903", "children": 2
    })
}

impl World {
    pub async fn new(backend: store::Backend) -> World {
        World::on(TestApp::start(backend).await).await
    }

    /// The same registry on an application already started.
    pub async fn on(t: TestApp) -> World {
        let (_, agent) = t.login("agent-1", Role::Agent, Binding::None).await;
        let (_, registrar) = t.login("agent-registrar", Role::Agent, Binding::None).await;
        let (_, officer) = t
            .login("officer-1", Role::SecurityOfficer, Binding::None)
            .await;
        let mut employers = Vec::new();
        for (name, ice) in [
            ("ATLAS TEXTILE SARL", "001525478000088"),
            ("SOUSS AGRO SA", "001525479000012"),
        ] {
            let r = t
                .post(
                    "/api/v1/employers",
                    &agent,
                    json!({"name": name, "activity": "Textile", "city": "Casablanca", "ice": ice}),
                )
                .await;
            assert_eq!(r.status, 201, "{:?}", r.json);
            employers.push(r.json["affiliate_number"].as_str().unwrap().to_string());
        }
        let mut persons = Vec::new();
        for (i, (cin, last, first)) in [
            ("ZZ123456", "BENNANI", "Salma"),
            ("ZY654321", "ALAOUI", "Youssef"),
            ("ZX99", "TAZI", "Omar"),
            ("ZW777", "FASSI", "Kenza"),
        ]
        .into_iter()
        .enumerate()
        {
            let r = t
                .post("/api/v1/persons", &agent, person_json(cin, last, first))
                .await;
            assert_eq!(r.status, 201, "{:?}", r.json);
            let immatriculation = r.json["immatriculation"].as_str().unwrap().to_string();
            let employer = match i {
                0 | 1 => Some(&employers[0]),
                2 => Some(&employers[1]),
                _ => None,
            };
            if let Some(e) = employer {
                // Linking needs a case on the person: a registration agent of its own opens
                // one, so `agent` starts with no case on anyone.
                let c = t
                    .post(
                        "/api/v1/cases",
                        &registrar,
                        json!({"immatriculation": immatriculation, "reason": "new employee"}),
                    )
                    .await;
                assert_eq!(c.status, 201, "{:?}", c.json);
                let l = t
                    .post(
                        "/api/v1/employments",
                        &registrar,
                        json!({"affiliate_number": e, "immatriculation": immatriculation, "start_date": "2024-01-01"}),
                    )
                    .await;
                assert_eq!(l.status, 201, "{:?}", l.json);
            }
            let subject = kernel::Subject::Immatriculation(
                domain::Immatriculation::parse(&immatriculation).unwrap(),
            );
            let (_, token) = t
                .login(
                    &format!("insured-{i}"),
                    Role::Insured,
                    Binding::Person(subject),
                )
                .await;
            persons.push(Person {
                id: r.json["person_id"].as_str().unwrap().to_string(),
                immatriculation,
                cin: cin.into(),
                token,
            });
        }
        let mut emps = Vec::new();
        for (i, a) in employers.iter().enumerate() {
            let (_, token) = t
                .login(
                    &format!("employer-{i}"),
                    Role::EmployerUser,
                    Binding::Employer(domain::AffiliateNumber::parse(a).unwrap()),
                )
                .await;
            emps.push(Employer {
                affiliate_number: a.clone(),
                token,
            });
        }
        let mut p = persons.into_iter();
        let mut e = emps.into_iter();
        World {
            t,
            agent,
            officer,
            a: p.next().unwrap(),
            b: p.next().unwrap(),
            c: p.next().unwrap(),
            d: p.next().unwrap(),
            employer1: e.next().unwrap(),
            employer2: e.next().unwrap(),
        }
    }

    pub async fn read(&self, token: &str, body: Value) -> testkit::Reply {
        self.t.post("/api/v1/persons/read", token, body).await
    }
}
