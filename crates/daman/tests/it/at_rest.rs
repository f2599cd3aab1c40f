//! What a stolen database holds: ciphertext bound to its place, and no plaintext.

use crate::{World, on_both_backends, person_json};
use serde_json::json;
use store::Backend;

on_both_backends!(
    a_ciphertext_copied_into_another_row_does_not_decrypt,
    a_dump_shows_lengths_only_to_the_bucket,
    no_column_of_a_dump_yields_an_immatriculation_number,
);

/// An attacker with a dump and no keys looks for a person's immatriculation number (encrypted,
/// and blind-indexed under a key the dump lacks) in every other column: no column of any table
/// holds a number, as digits or at a constant offset (persons' row ids were the number minus
/// 100 000 000), and the row ids that every table naming a person holds (employments, cases,
/// principals, block directories) are in no order of the numbers. Registration times are kept
/// to the day, which a whole batch shares.
async fn no_column_of_a_dump_yields_an_immatriculation_number(b: Backend) {
    let w = World::new(b).await;
    let reg = w.t.app.registry();
    let operator = kernel::Registrar::operator();
    let new = |i: usize| -> registry::NewPerson {
        serde_json::from_value(person_json(&format!("ZT{i:04}"), "NACIRI", "Aya")).unwrap()
    };
    let batch: Vec<registry::NewPerson> = (0..200).map(new).collect();
    let mut created = reg.immatriculate(operator, &batch, "t").await.unwrap();
    for i in 200..220 {
        w.t.clock.advance_seconds(60);
        created.extend(reg.immatriculate(operator, &[new(i)], "t").await.unwrap());
    }
    let mut pairs: Vec<(i64, i64)> = created
        .iter()
        .map(|c| (c.person_id, c.immatriculation.parse().unwrap()))
        .collect();
    for p in [&w.a, &w.b, &w.c, &w.d] {
        pairs.push((p.id.parse().unwrap(), p.immatriculation.parse().unwrap()));
    }
    let dump = w.t.raw_dump().await;
    assert!(
        dump.iter()
            .any(|(t, c, _)| t == "employments" && c == "person_id")
    );
    for (table, column, values) in &dump {
        let values: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
        for (_, n) in &pairs {
            let n = n.to_string();
            assert!(
                !values.iter().any(|v| v.contains(&n)),
                "{table}.{column} holds a number"
            );
        }
        // No constant offset maps the numbers into the column (as `persons.id` once did, all
        // of them): try each offset that maps the first person's number onto one of its
        // values. A short run of small counters (migration versions) meets a few at most.
        let ints: std::collections::HashSet<i64> =
            values.iter().filter_map(|v| v.parse().ok()).collect();
        let first = pairs[0].1;
        let best = ints
            .iter()
            .map(|v| {
                let c = first - v;
                pairs
                    .iter()
                    .filter(|(_, n)| ints.contains(&(n - c)))
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert!(
            best * 2 < pairs.len(),
            "{table}.{column}: {best} numbers at one offset"
        );
    }
    // Row ids: keyed, and uncorrelated with the numbers (Spearman's rank correlation; for
    // 224 persons in no order it is within ±0.3 but about once in 30 000 runs).
    assert!(pairs.iter().all(|(id, _)| *id >= vault::PERSON_ID_BASE));
    let rank = |key: &dyn Fn(&(i64, i64)) -> i64| {
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|i| key(&pairs[*i]));
        let mut r = vec![0f64; pairs.len()];
        for (k, i) in order.into_iter().enumerate() {
            r[i] = k as f64;
        }
        r
    };
    let (ri, rn) = (rank(&|p| p.0), rank(&|p| p.1));
    let n = pairs.len() as f64;
    let d2: f64 = ri.iter().zip(&rn).map(|(a, b)| (a - b) * (a - b)).sum();
    let rho = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
    assert!(rho.abs() < 0.3, "row ids follow the numbers: rho = {rho}");
    // The 20 persons registered one by one, a minute apart, share one registration time.
    let times: std::collections::BTreeSet<&Option<String>> = dump
        .iter()
        .filter(|(t, c, _)| t == "persons" && c == "created_at")
        .flat_map(|(_, _, v)| v)
        .collect();
    assert_eq!(times.len(), 1, "{} registration times", times.len());
}

/// Personal values whose lengths differ by less than a bucket (32 bytes) seal to ciphertexts of
/// one length: the world's last names (4 to 7 letters), CINs (4 to 8 characters), addresses,
/// and the declared names of claims, are each of one length in a dump.
async fn a_dump_shows_lengths_only_to_the_bucket(b: Backend) {
    let w = World::new(b).await;
    for column in [
        "last_name",
        "first_name",
        "cin",
        "address",
        "immatriculation",
    ] {
        let lengths: std::collections::BTreeSet<usize> =
            w.t.raw_blobs(&format!("SELECT {column} FROM persons"))
                .await
                .iter()
                .map(Vec::len)
                .collect();
        assert_eq!(lengths.len(), 1, "{column}: {lengths:?}");
    }
    // An address of 31 bytes and one of 33 are a bucket apart.
    let short = "N 1 Rue Ibn Sina Rabat 10000 MA"; // 31
    assert_eq!(short.len(), 31);
    for (who, address) in [(&w.a, short.to_string()), (&w.b, format!("{short}XX"))] {
        let r =
            w.t.post(
                "/api/v1/persons/contact",
                &who.token,
                json!({"person_id": who.id, "address": address}),
            )
            .await;
        assert_eq!(r.status, 204, "{:?}", r.json);
    }
    let address_of = |id: &str| format!("SELECT address FROM persons WHERE id = {id}");
    let a = w.t.raw_blobs(&address_of(&w.a.id)).await;
    let bb = w.t.raw_blobs(&address_of(&w.b.id)).await;
    assert_eq!(bb[0].len() - a[0].len(), vault::PAD_BUCKET);
}

async fn a_ciphertext_copied_into_another_row_does_not_decrypt(b: Backend) {
    let w = World::new(b).await;
    // An attacker with write access copies B's RIB ciphertext into A's row (to divert A's
    // benefits to B's account) and B's CIN ciphertext into A's CIN column.
    let sql = "UPDATE persons SET rib = (SELECT rib FROM persons WHERE id = $2), cin = (SELECT cin FROM persons WHERE id = $2) WHERE id = $1";
    let (a, bb): (i64, i64) = (w.a.id.parse().unwrap(), w.b.id.parse().unwrap());
    w.t.raw_execute(sql, &[a, bb]).await.unwrap();
    for fields in [json!(["rib"]), json!(["cin"])] {
        let r = w.read(&w.a.token, json!({"person_id": w.a.id, "purpose": "self_service", "fields": fields, "full": true})).await;
        assert_eq!(r.status, 500, "{:?}", r.json);
        assert_eq!(r.json["error"]["code"], "internal");
        assert!(!r.json.to_string().contains("ZY654321"));
    }
    // The untouched fields of A and all of B still read.
    let r = w.read(&w.a.token, json!({"person_id": w.a.id, "purpose": "self_service", "fields": ["last_name"], "full": true})).await;
    assert_eq!(r.json["fields"]["last_name"], "BENNANI");
    let r = w.read(&w.b.token, json!({"person_id": w.b.id, "purpose": "self_service", "fields": ["rib", "cin"], "full": true})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["fields"]["cin"], "ZY654321");
}

/// Loads a population with the real binary into a fresh data directory, then searches every
/// byte of the database directory for each person's identifiers, names, RIB, phone and e-mail.
#[test]
fn the_demo_database_holds_no_personal_data_in_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("daman-data");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_daman"))
        .args([
            "load",
            "--employers",
            "20",
            "--persons",
            "400",
            "--seed",
            "7",
            "--quiet",
        ])
        .env("DAMAN_DATA_DIR", &data)
        .env("DAMAN_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(data.join("db")).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(bytes.len() > 100_000, "the database was written");
    let pop = synth::Population::new(7, 20, 400, domain::Centimes(342_272));
    // Valid UTF-8 runs survive the lossy conversion unchanged, so every needle is found if present.
    let text = String::from_utf8_lossy(&bytes);
    let contains = |needle: &str| text.contains(needle);
    for i in 0..400 {
        let p = pop.person(i);
        let national = p.phone.trim_start_matches("+212").to_string();
        let mut needles = vec![
            p.cin.clone(),
            p.rib.clone(),
            p.phone.clone(),
            national,
            p.birth_date.clone(),
        ];
        needles.push(format!("{} {}", p.first_name, p.last_name));
        needles.push(p.last_name_ar.clone());
        if let Some(e) = &p.email {
            needles.push(e.clone());
        }
        for n in needles {
            assert!(!contains(&n), "person {i}: plaintext found in the database");
        }
    }
    // Family names alone (short, common words) do not appear either.
    for last in ["Bennani", "Alaoui", "El Idrissi", "Chraibi", "Ouazzani"] {
        assert!(!contains(last), "{last}");
    }
    // The keys are not in the database directory.
    assert!(data.join("keys/kek.key").is_file());
    assert!(
        !std::fs::read_dir(data.join("db")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("key"))
    );
}
