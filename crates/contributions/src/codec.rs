//! What the sealed columns hold: préétabli and declaration headers, a préétabli's employees,
//! each declaration line with what it owes (fields separated by U+001F, which no e-BDS field
//! may contain), and the stored numbers of periods and forms.

use domain::{Centimes, Date, Period};
use ebds::{Employee, Ending, Entrant, Form, Identity, Layout, Line, Situation};

use kernel::AppError;

pub(crate) const SEP: char = '\u{1f}';

pub(crate) fn join(parts: &[String]) -> Vec<u8> {
    parts.join(&SEP.to_string()).into_bytes()
}

pub(crate) fn split(b: &[u8]) -> Result<Vec<String>, AppError> {
    let s = std::str::from_utf8(b).map_err(|_| store::StoreError::Corrupt("payload"))?;
    Ok(s.split(SEP).map(str::to_string).collect())
}

pub(crate) fn corrupt() -> AppError {
    store::StoreError::Corrupt("declaration payload").into()
}

pub(crate) fn num<T: std::str::FromStr>(s: &str) -> Result<T, AppError> {
    s.parse().map_err(|_| corrupt())
}

pub(crate) fn date8(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year, d.month, d.day)
}

pub(crate) fn parse_date8(s: &str) -> Result<Date, AppError> {
    let n: u32 = num(s)?;
    Date::new((n / 10_000) as i32, (n / 100 % 100) as u8, (n % 100) as u8).ok_or_else(corrupt)
}

/// Transfer id, form, identity and layout of a file.
pub(crate) fn header_payload(transfer: u64, form: i64, i: &Identity, layout: Layout) -> Vec<u8> {
    join(&[
        transfer.to_string(),
        form.to_string(),
        i.affiliate.to_string(),
        i.period.to_string(),
        i.name.clone(),
        i.activity.clone(),
        i.address.clone(),
        i.city.clone(),
        i.postcode.clone(),
        i.agency.clone(),
        date8(i.issued),
        date8(i.due),
        match layout.ending {
            Ending::Lf => "lf".into(),
            Ending::CrLf => "crlf".into(),
        },
        u8::from(layout.final_newline).to_string(),
    ])
}

pub(crate) fn parse_header(b: &[u8]) -> Result<(u64, i64, Identity, Layout), AppError> {
    let f = split(b)?;
    if f.len() != 14 {
        return Err(corrupt());
    }
    let identity = Identity {
        affiliate: num(&f[2])?,
        period: Period::parse(&f[3]).map_err(|_| corrupt())?,
        name: f[4].clone(),
        activity: f[5].clone(),
        address: f[6].clone(),
        city: f[7].clone(),
        postcode: f[8].clone(),
        agency: f[9].clone(),
        issued: parse_date8(&f[10])?,
        due: parse_date8(&f[11])?,
    };
    let layout = Layout {
        ending: if f[12] == "crlf" {
            Ending::CrLf
        } else {
            Ending::Lf
        },
        final_newline: f[13] == "1",
    };
    Ok((num(&f[0])?, num(&f[1])?, identity, layout))
}

/// A préétabli's employees as sealed in `preetablis.employees`, in the order issued (by
/// immatriculation); integers little-endian:
///
/// ```text
/// version: u8 = 1
/// n: u32
/// n × (person: i64, immatriculation: u32, children: u8, af_payable: i64,
///      af_deductible: i64, af_net: i64, name length: u16, name: bytes)
/// ```
pub(crate) fn employees_payload(employees: &[(i64, Employee)]) -> Result<Vec<u8>, AppError> {
    let names: usize = employees.iter().map(|(_, e)| e.name.len()).sum();
    let mut b = Vec::with_capacity(5 + employees.len() * 39 + names);
    b.push(1);
    b.extend_from_slice(&(employees.len() as u32).to_le_bytes());
    for (person, e) in employees {
        b.extend_from_slice(&person.to_le_bytes());
        b.extend_from_slice(&e.immatriculation.to_le_bytes());
        b.push(e.children);
        for amount in [e.af_payable, e.af_deductible, e.af_net] {
            b.extend_from_slice(&amount.0.to_le_bytes());
        }
        // Names are fitted to 60 characters before they get here.
        let len = u16::try_from(e.name.len()).map_err(|_| AppError::Internal("name length"))?;
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(e.name.as_bytes());
    }
    Ok(b)
}

/// The reverse of [`employees_payload`]; anything else is corrupt.
pub(crate) fn parse_employees(b: &[u8]) -> Result<Vec<(i64, Employee)>, AppError> {
    struct Cursor<'a>(&'a [u8]);
    impl<'a> Cursor<'a> {
        fn take<const N: usize>(&mut self) -> Result<[u8; N], AppError> {
            let (head, rest) = self.0.split_first_chunk::<N>().ok_or_else(corrupt)?;
            self.0 = rest;
            Ok(*head)
        }
        fn bytes(&mut self, n: usize) -> Result<&'a [u8], AppError> {
            let (head, rest) = self.0.split_at_checked(n).ok_or_else(corrupt)?;
            self.0 = rest;
            Ok(head)
        }
        fn i64(&mut self) -> Result<i64, AppError> {
            Ok(i64::from_le_bytes(self.take()?))
        }
    }
    let mut c = Cursor(b);
    if c.take::<1>()? != [1] {
        return Err(corrupt());
    }
    let n = u32::from_le_bytes(c.take()?) as usize;
    let mut out = Vec::with_capacity(n.min(b.len() / 39));
    for _ in 0..n {
        let person = c.i64()?;
        let immatriculation = u32::from_le_bytes(c.take()?);
        let [children] = c.take()?;
        let (af_payable, af_deductible, af_net) = (c.i64()?, c.i64()?, c.i64()?);
        let len = usize::from(u16::from_le_bytes(c.take()?));
        let name = std::str::from_utf8(c.bytes(len)?).map_err(|_| corrupt())?;
        out.push((
            person,
            Employee {
                immatriculation,
                name: name.to_string(),
                children,
                af_payable: Centimes(af_payable),
                af_deductible: Centimes(af_deductible),
                af_net: Centimes(af_net),
            },
        ));
    }
    if !c.0.is_empty() {
        return Err(corrupt());
    }
    Ok(out)
}

pub(crate) fn parse_employee(f: &[String]) -> Result<Employee, AppError> {
    if f.len() < 6 {
        return Err(corrupt());
    }
    Ok(Employee {
        immatriculation: num(&f[0])?,
        name: f[1].clone(),
        children: num(&f[2])?,
        af_payable: Centimes(num(&f[3])?),
        af_deductible: Centimes(num(&f[4])?),
        af_net: Centimes(num(&f[5])?),
    })
}

/// A declared line as stored: the line or entrant, and its contributions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoredLine {
    Known(Line),
    Entrant(Entrant),
}

/// A line to store, borrowed from its declaration (written without copying it).
#[derive(Debug, Clone, Copy)]
pub(crate) enum LineToStore<'a> {
    Known(&'a Line),
    Entrant(&'a Entrant),
}

impl StoredLine {
    #[cfg(test)]
    pub(crate) fn to_store(&self) -> LineToStore<'_> {
        match self {
            StoredLine::Known(l) => LineToStore::Known(l),
            StoredLine::Entrant(e) => LineToStore::Entrant(e),
        }
    }
}

/// Appends a line's payload to `b`: its fields joined by SEP, as `join` of their `Display`
/// would, written straight into the buffer (four million lines a month; numbers without the
/// formatting machinery).
pub(crate) fn line_payload(
    b: &mut Vec<u8>,
    l: LineToStore<'_>,
    employer: Centimes,
    employee: Centimes,
) {
    let start = b.len();
    let sep = |b: &mut Vec<u8>| {
        if b.len() > start {
            let mut sep = [0u8; 4];
            b.extend_from_slice(SEP.encode_utf8(&mut sep).as_bytes());
        }
    };
    let text = |b: &mut Vec<u8>, v: &str| {
        sep(b);
        b.extend_from_slice(v.as_bytes());
    };
    let int = |b: &mut Vec<u8>, v: i64| {
        sep(b);
        push_decimal(b, v);
    };
    match l {
        LineToStore::Known(l) => {
            let e = &l.employee;
            text(b, "B");
            int(b, e.immatriculation.into());
            text(b, &e.name);
            int(b, e.children.into());
            int(b, e.af_payable.0);
            int(b, e.af_deductible.0);
            int(b, e.af_net.0);
            int(b, l.af_repayable.0);
            int(b, l.days.into());
            int(b, l.gross.0);
            int(b, l.capped.0);
            text(b, l.situation.code().trim());
        }
        LineToStore::Entrant(e) => {
            text(b, "E");
            int(b, e.immatriculation.unwrap_or(0).into());
            text(b, &e.name);
            text(b, &e.cin);
            int(b, e.days.into());
            int(b, e.gross.0);
            int(b, e.capped.0);
        }
    }
    int(b, employer.0);
    int(b, employee.0);
}

/// `v` in decimal, as `Display` writes it. The digits are written in place, behind a
/// fixed-size extension the compiler copies inline (a copy of the digits' own length was a call
/// to `memcpy` for each of the 44 million numbers of a month's lines).
pub(crate) fn push_decimal(b: &mut Vec<u8>, v: i64) {
    if v < 0 {
        b.push(b'-');
    }
    let mut n = v.unsigned_abs();
    let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
    let start = b.len();
    b.extend_from_slice(&[b'0'; 20]);
    b.truncate(start + digits);
    for d in b[start..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

pub(crate) fn parse_line(b: &[u8]) -> Result<(StoredLine, Centimes, Centimes), AppError> {
    let f = split(b)?;
    let n = f.len();
    if n < 3 {
        return Err(corrupt());
    }
    let shares = (Centimes(num(&f[n - 2])?), Centimes(num(&f[n - 1])?));
    let line = match (f[0].as_str(), n) {
        ("B", 14) => {
            let code = format!("{:<2}", f[11]);
            StoredLine::Known(Line {
                employee: parse_employee(&f[1..7])?,
                af_repayable: Centimes(num(&f[7])?),
                days: num(&f[8])?,
                gross: Centimes(num(&f[9])?),
                capped: Centimes(num(&f[10])?),
                situation: Situation::parse(code.as_bytes()).ok_or_else(corrupt)?,
            })
        }
        ("E", 9) => {
            let imma: u32 = num(&f[1])?;
            StoredLine::Entrant(Entrant {
                immatriculation: (imma != 0).then_some(imma),
                name: f[2].clone(),
                cin: f[3].clone(),
                days: num(&f[4])?,
                gross: Centimes(num(&f[5])?),
                capped: Centimes(num(&f[6])?),
            })
        }
        _ => return Err(corrupt()),
    };
    Ok((line, shares.0, shares.1))
}

pub(crate) fn transfer_id(period: Period, preetabli_id: i64) -> u64 {
    // AAAAMM then the préétabli's number on 8 digits: unique, 14 digits.
    period.number() as u64 * 100_000_000 + (preetabli_id as u64 % 100_000_000)
}

pub(crate) fn form_of(n: i64) -> Form {
    match u8::try_from(n) {
        Ok(k @ 1..=9) => Form::Complementary(k),
        _ => Form::Main,
    }
}

pub(crate) fn form_number(f: Form) -> i64 {
    match f {
        Form::Main => 0,
        Form::Complementary(n) => i64::from(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_stored_as_its_fields_joined_and_reads_back() {
        let known = StoredLine::Known(Line {
            employee: Employee {
                immatriculation: 100_000_007,
                name: "SALARIE SYNTHETIQUE".into(),
                children: 2,
                af_payable: Centimes(60_000),
                af_deductible: Centimes(0),
                af_net: Centimes(60_000),
            },
            af_repayable: Centimes(0),
            days: 26,
            gross: Centimes(800_000),
            capped: Centimes(600_000),
            situation: Situation::Normal,
        });
        let entrant = StoredLine::Entrant(Entrant {
            immatriculation: None,
            name: "NOUVEAU SALARIE".into(),
            cin: "QE100001".into(),
            days: 13,
            gross: Centimes(200_000),
            capped: Centimes(200_000),
        });
        let mut b = Vec::new();
        line_payload(
            &mut b,
            known.to_store(),
            Centimes(126_540),
            Centimes(40_440),
        );
        assert_eq!(
            b,
            join(
                &[
                    "B",
                    "100000007",
                    "SALARIE SYNTHETIQUE",
                    "2",
                    "60000",
                    "0",
                    "60000",
                    "0",
                    "26",
                    "800000",
                    "600000",
                    "",
                    "126540",
                    "40440"
                ]
                .map(String::from)
            )
        );
        assert_eq!(
            parse_line(&b).unwrap(),
            (known, Centimes(126_540), Centimes(40_440))
        );
        // Appended after another line's payload: the same bytes as on its own.
        let mut two = b.clone();
        line_payload(
            &mut two,
            entrant.to_store(),
            Centimes(42_180),
            Centimes(13_480),
        );
        let alone = two.split_off(b.len());
        assert_eq!(two, b);
        assert_eq!(
            parse_line(&alone).unwrap(),
            (entrant, Centimes(42_180), Centimes(13_480))
        );
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut x: i64 = 0x2545_F491_4F6C_DD1D;
        let mut values = vec![
            0,
            1,
            9,
            10,
            99,
            100,
            -1,
            -10,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ];
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x);
            values.push(x % 1_000_000);
        }
        for v in values {
            let mut b = Vec::new();
            push_decimal(&mut b, v);
            assert_eq!(b, v.to_string().into_bytes(), "{v}");
        }
    }

    #[test]
    fn preetabli_employees_round_trip_and_refuse_anything_else() {
        let employees: Vec<(i64, Employee)> = (0..3u32)
            .map(|k| {
                (
                    1_000 + i64::from(k),
                    Employee {
                        immatriculation: 100_000_001 + k,
                        name: format!("SALARIE SYNTHETIQUE {k}"),
                        children: k as u8,
                        af_payable: Centimes(30_000 * i64::from(k)),
                        af_deductible: Centimes(0),
                        af_net: Centimes(30_000 * i64::from(k)),
                    },
                )
            })
            .collect();
        let b = employees_payload(&employees).unwrap();
        assert_eq!(parse_employees(&b).unwrap(), employees);
        assert_eq!(
            parse_employees(&employees_payload(&[]).unwrap()).unwrap(),
            vec![]
        );
        // Cut anywhere, lengthened, or of another version: corrupt, never a shorter list.
        for cut in 0..b.len() {
            assert!(parse_employees(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(parse_employees(&longer).is_err());
        let mut other = b;
        other[0] = 2;
        assert!(parse_employees(&other).is_err());
    }
}
