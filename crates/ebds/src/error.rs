//! What is wrong with a file: where (line, record, field), what was found, and the rule broken,
//! in French, Arabic and English.

use crate::layout::RecordType;
use domain::Lang;
use std::fmt;

/// A rule of the format that a record broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The record is not 260 characters long.
    Length(usize),
    /// An empty line.
    EmptyLine,
    /// A line ends differently from the first (LF and CRLF mixed).
    MixedLineEndings,
    /// The first three characters are not a known record type.
    UnknownRecord,
    /// A record of another family of files (e.g. `A02` in a declaration).
    WrongFamily(char),
    /// The record is not expected here; the one expected is named.
    OutOfOrder(String),
    /// A record the file must hold is missing.
    Missing(RecordType),
    /// An N field with something other than digits.
    NotDigits,
    /// An AN field with a character outside A–Z, 0–9, space and tab.
    NotAllowedChar,
    /// A filler with something other than spaces.
    NotBlank,
    /// Not a date `AAAAMMJJ`.
    BadDate,
    /// Not a period `AAAAMM`.
    BadPeriod,
    /// The category of the file (`L_Cat`) is not the one expected.
    BadCategory(String),
    /// The affiliation number or the period differs from the `01` record's.
    DiffersFromHeader(String),
    /// More than 26 days.
    DaysRange,
    /// Not a situation code.
    UnknownSituation,
    /// Situation CS or MS with days or a salary.
    NoPaySituation,
    /// The capped salary is above the real salary.
    CappedAboveReal,
    /// The capped salary is not min(real, ceiling): the expected value.
    CappedNotCeiling(i64),
    /// A control sum that does not match: the expected value.
    ControlSum(u64),
    /// A recap total that does not match: the expected value.
    Total(u64),
    /// The same immatriculation number twice in the file.
    DuplicateEmployee,
    /// A line of the préétabli or the declaration without an immatriculation number.
    ImmatriculationRequired,
    /// An entrant without a number and without a CIN.
    CinRequired,
    /// A CIN that is not one or two letters then 1 to 6 digits.
    CinShape,
    /// A line without a name.
    NameRequired,
    /// The empty entrant line is allowed only alone.
    PlaceholderNotAlone,
    /// A complementary declaration declares only entrants: its E02 line must be the empty one.
    ComplementaryDeclaresEntrantsOnly,
    /// The number does not fit its field.
    TooLarge,
    /// The text is longer than its field.
    TooLong(usize),
    /// More errors than are reported: how many more.
    TooManyErrors(u64),
    /// The file could not be read.
    Unreadable,
    // ---- rules checked against the registry when a declaration is imported ----
    /// No employer has this affiliation number, or it is not the uploader's.
    UnknownAffiliate,
    /// No préétabli was issued to this employer for this period.
    NoPreetabli,
    /// B00 does not repeat the préétabli's transfer id: the expected one.
    TransferId(String),
    /// A B02 employee who is not in the préétabli (declare them as an entrant, B04).
    NotInPreetabli,
    /// An employee of the préétabli without a B02 line: their number.
    MissingEmployee(String),
    /// A value that must repeat the préétabli's: the expected one.
    DiffersFromPreetabli(String),
    /// An entrant with a number and no CIN: the registry is not asked about a number alone
    /// (the same error whether the number is anyone's).
    EntrantCinRequired,
    /// The main declaration, or this complementary one, was already accepted for the period.
    AlreadyDeclared,
    /// A complementary declaration before the main one.
    MainDeclarationMissing,
    /// The same person twice for the employer and period (in this file, or already accepted).
    DeclaredTwice,
    /// A rectification names another affiliate, period or form than the declaration it
    /// replaces: that declaration's (affiliate, period, category).
    RectifiesAnother(String),
}

impl Problem {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Length(_) => "record_length",
            Problem::EmptyLine => "empty_line",
            Problem::MixedLineEndings => "mixed_line_endings",
            Problem::UnknownRecord => "unknown_record",
            Problem::WrongFamily(_) => "wrong_family",
            Problem::OutOfOrder(_) => "out_of_order",
            Problem::Missing(_) => "missing_record",
            Problem::NotDigits => "not_digits",
            Problem::NotAllowedChar => "not_allowed_char",
            Problem::NotBlank => "not_blank",
            Problem::BadDate => "bad_date",
            Problem::BadPeriod => "bad_period",
            Problem::BadCategory(_) => "bad_category",
            Problem::DiffersFromHeader(_) => "differs_from_header",
            Problem::DaysRange => "days_range",
            Problem::UnknownSituation => "unknown_situation",
            Problem::NoPaySituation => "no_pay_situation",
            Problem::CappedAboveReal => "capped_above_real",
            Problem::CappedNotCeiling(_) => "capped_not_ceiling",
            Problem::ControlSum(_) => "control_sum",
            Problem::Total(_) => "total",
            Problem::DuplicateEmployee => "duplicate_employee",
            Problem::ImmatriculationRequired => "immatriculation_required",
            Problem::CinRequired => "cin_required",
            Problem::CinShape => "cin_shape",
            Problem::NameRequired => "name_required",
            Problem::PlaceholderNotAlone => "placeholder_not_alone",
            Problem::ComplementaryDeclaresEntrantsOnly => "complementary_entrants_only",
            Problem::TooLarge => "too_large",
            Problem::TooLong(_) => "too_long",
            Problem::TooManyErrors(_) => "too_many_errors",
            Problem::Unreadable => "unreadable",
            Problem::UnknownAffiliate => "unknown_affiliate",
            Problem::NoPreetabli => "no_preetabli",
            Problem::TransferId(_) => "transfer_id",
            Problem::NotInPreetabli => "not_in_preetabli",
            Problem::MissingEmployee(_) => "missing_employee",
            Problem::DiffersFromPreetabli(_) => "differs_from_preetabli",
            Problem::EntrantCinRequired => "entrant_cin_required",
            Problem::AlreadyDeclared => "already_declared",
            Problem::MainDeclarationMissing => "main_declaration_missing",
            Problem::DeclaredTwice => "declared_twice",
            Problem::RectifiesAnother(_) => "rectifies_another",
        }
    }

    /// The rule in words.
    pub fn describe(&self, lang: Lang) -> String {
        use Lang::*;
        use Problem::*;
        match (self, lang) {
            (Length(n), Fr) => format!("un enregistrement compte 260 caractères (trouvé {n})"),
            (Length(n), Ar) => format!("يجب أن يتكون السجل من 260 حرفًا (وُجد {n})"),
            (Length(n), En) => format!("a record is 260 characters long (found {n})"),
            (EmptyLine, Fr) => "ligne vide".into(),
            (EmptyLine, Ar) => "سطر فارغ".into(),
            (EmptyLine, En) => "empty line".into(),
            (MixedLineEndings, Fr) => {
                "fins de ligne mélangées : LF ou CRLF, le même partout".into()
            }
            (MixedLineEndings, Ar) => "نهايات أسطر مختلطة: LF أو CRLF، نفسها في كل الملف".into(),
            (MixedLineEndings, En) => "mixed line endings: LF or CRLF, the same throughout".into(),
            (UnknownRecord, Fr) => "type d'enregistrement inconnu".into(),
            (UnknownRecord, Ar) => "نوع سجل غير معروف".into(),
            (UnknownRecord, En) => "unknown record type".into(),
            (WrongFamily(c), Fr) => {
                format!("enregistrement d'un autre type de fichier (attendu : {c}..)")
            }
            (WrongFamily(c), Ar) => format!("سجل من نوع ملف آخر (المتوقع: {c}..)"),
            (WrongFamily(c), En) => format!("record of another kind of file (expected {c}..)"),
            (OutOfOrder(e), Fr) => format!("enregistrement inattendu ici (attendu : {e})"),
            (OutOfOrder(e), Ar) => format!("سجل غير متوقع في هذا الموضع (المتوقع: {e})"),
            (OutOfOrder(e), En) => format!("record not expected here (expected {e})"),
            (Missing(r), Fr) => format!("enregistrement {r} manquant"),
            (Missing(r), Ar) => format!("السجل {r} مفقود"),
            (Missing(r), En) => format!("record {r} missing"),
            (NotDigits, Fr) => "chiffres seulement, complétés à gauche par des zéros".into(),
            (NotDigits, Ar) => "أرقام فقط، مكملة بأصفار على اليسار".into(),
            (NotDigits, En) => "digits only, zero-padded on the left".into(),
            (NotAllowedChar, Fr) => "majuscules sans accents, chiffres et espaces seulement".into(),
            (NotAllowedChar, Ar) => "حروف لاتينية كبيرة بدون نبرات وأرقام ومسافات فقط".into(),
            (NotAllowedChar, En) => "upper case without accents, digits and spaces only".into(),
            (NotBlank, Fr) => "doit être rempli d'espaces".into(),
            (NotBlank, Ar) => "يجب أن يُملأ بمسافات".into(),
            (NotBlank, En) => "must be spaces".into(),
            (BadDate, Fr) => "date invalide (AAAAMMJJ)".into(),
            (BadDate, Ar) => "تاريخ غير صحيح (AAAAMMJJ)".into(),
            (BadDate, En) => "not a date (YYYYMMDD)".into(),
            (BadPeriod, Fr) => "période invalide (AAAAMM)".into(),
            (BadPeriod, Ar) => "فترة غير صحيحة (AAAAMM)".into(),
            (BadPeriod, En) => "not a period (YYYYMM)".into(),
            (BadCategory(e), Fr) => format!("catégorie attendue : {e}"),
            (BadCategory(e), Ar) => format!("الفئة المتوقعة: {e}"),
            (BadCategory(e), En) => format!("expected category {e}"),
            (DiffersFromHeader(e), Fr) => {
                format!("diffère de l'enregistrement d'en-tête (attendu : {e})")
            }
            (DiffersFromHeader(e), Ar) => format!("يختلف عن سجل الرأس (المتوقع: {e})"),
            (DiffersFromHeader(e), En) => format!("differs from the header record (expected {e})"),
            (DaysRange, Fr) => "de 0 à 26 jours".into(),
            (DaysRange, Ar) => "من 0 إلى 26 يومًا".into(),
            (DaysRange, En) => "0 to 26 days".into(),
            (UnknownSituation, Fr) => {
                "situation inconnue (vide, SO, DE, IT, IL, AT, CS, MS ou MP)".into()
            }
            (UnknownSituation, Ar) => {
                "وضعية غير معروفة (فارغة، SO، DE، IT، IL، AT، CS، MS أو MP)".into()
            }
            (UnknownSituation, En) => {
                "unknown situation (blank, SO, DE, IT, IL, AT, CS, MS or MP)".into()
            }
            (NoPaySituation, Fr) => "situation CS ou MS : 0 jour et salaire nul".into(),
            (NoPaySituation, Ar) => "الوضعية CS أو MS: صفر يوم وأجر منعدم".into(),
            (NoPaySituation, En) => "situation CS or MS: 0 days and no salary".into(),
            (CappedAboveReal, Fr) => "le salaire plafonné dépasse le salaire réel".into(),
            (CappedAboveReal, Ar) => "الأجر المسقف يفوق الأجر الحقيقي".into(),
            (CappedAboveReal, En) => "the capped salary is above the real salary".into(),
            (CappedNotCeiling(v), Fr) => {
                format!("salaire plafonné = min(salaire réel, plafond) = {v}")
            }
            (CappedNotCeiling(v), Ar) => format!("الأجر المسقف = أدنى(الأجر الحقيقي، السقف) = {v}"),
            (CappedNotCeiling(v), En) => format!("capped salary = min(real salary, ceiling) = {v}"),
            (ControlSum(v), Fr) => format!("somme de contrôle fausse (attendu : {v})"),
            (ControlSum(v), Ar) => format!("مجموع المراقبة خاطئ (المتوقع: {v})"),
            (ControlSum(v), En) => format!("wrong control sum (expected {v})"),
            (Total(v), Fr) => format!("total faux (attendu : {v})"),
            (Total(v), Ar) => format!("المجموع خاطئ (المتوقع: {v})"),
            (Total(v), En) => format!("wrong total (expected {v})"),
            (DuplicateEmployee, Fr) => {
                "numéro d'immatriculation déjà présent dans le fichier".into()
            }
            (DuplicateEmployee, Ar) => "رقم التسجيل موجود من قبل في الملف".into(),
            (DuplicateEmployee, En) => "immatriculation number already in the file".into(),
            (ImmatriculationRequired, Fr) => "numéro d'immatriculation obligatoire".into(),
            (ImmatriculationRequired, Ar) => "رقم التسجيل إلزامي".into(),
            (ImmatriculationRequired, En) => "immatriculation number required".into(),
            (CinRequired, Fr) => {
                "CIN obligatoire quand le numéro d'immatriculation est 000000000".into()
            }
            (CinRequired, Ar) => {
                "رقم البطاقة الوطنية إلزامي عندما يكون رقم التسجيل 000000000".into()
            }
            (CinRequired, En) => "CIN required when the immatriculation is 000000000".into(),
            (CinShape, Fr) => "CIN : une ou deux lettres puis 1 à 6 chiffres".into(),
            (CinShape, Ar) => "البطاقة الوطنية: حرف أو حرفان ثم من 1 إلى 6 أرقام".into(),
            (CinShape, En) => "CIN: one or two letters then 1 to 6 digits".into(),
            (NameRequired, Fr) => "nom et prénom obligatoires".into(),
            (NameRequired, Ar) => "الاسم العائلي والشخصي إلزاميان".into(),
            (NameRequired, En) => "name required".into(),
            (PlaceholderNotAlone, Fr) => "la ligne d'entrant vide n'est permise que seule".into(),
            (PlaceholderNotAlone, Ar) => "سطر الداخل الفارغ مسموح به وحده فقط".into(),
            (PlaceholderNotAlone, En) => "the empty entrant line is allowed only alone".into(),
            (ComplementaryDeclaresEntrantsOnly, Fr) => {
                "une déclaration complémentaire ne déclare que des entrants (E02 vide)".into()
            }
            (ComplementaryDeclaresEntrantsOnly, Ar) => {
                "التصريح التكميلي لا يصرح إلا بالداخلين (E02 فارغ)".into()
            }
            (ComplementaryDeclaresEntrantsOnly, En) => {
                "a complementary declaration declares entrants only (empty E02)".into()
            }
            (TooLarge, Fr) => "nombre trop grand pour sa zone".into(),
            (TooLarge, Ar) => "العدد أكبر من خانته".into(),
            (TooLarge, En) => "number too large for its field".into(),
            (TooLong(n), Fr) => format!("au plus {n} caractères"),
            (TooLong(n), Ar) => format!("{n} حرفًا على الأكثر"),
            (TooLong(n), En) => format!("at most {n} characters"),
            (TooManyErrors(n), Fr) => format!("et {n} autres erreurs, non détaillées"),
            (TooManyErrors(n), Ar) => format!("و{n} أخطاء أخرى غير مفصلة"),
            (TooManyErrors(n), En) => format!("and {n} more errors, not listed"),
            (Unreadable, Fr) => "fichier illisible".into(),
            (Unreadable, Ar) => "ملف غير مقروء".into(),
            (Unreadable, En) => "unreadable file".into(),
            (UnknownAffiliate, Fr) => {
                "numéro d'affiliation inconnu ou qui n'est pas le vôtre".into()
            }
            (UnknownAffiliate, Ar) => "رقم انخراط غير معروف أو ليس رقمكم".into(),
            (UnknownAffiliate, En) => "unknown affiliation number, or not yours".into(),
            (NoPreetabli, Fr) => {
                "aucun préétabli pour cette période : téléchargez-le d'abord".into()
            }
            (NoPreetabli, Ar) => "لا يوجد تصريح مسبق لهذه الفترة: حمّلوه أولًا".into(),
            (NoPreetabli, En) => "no préétabli for this period: download it first".into(),
            (TransferId(e), Fr) => format!("identifiant de transfert du préétabli attendu : {e}"),
            (TransferId(e), Ar) => format!("معرف التحويل المتوقع للتصريح المسبق: {e}"),
            (TransferId(e), En) => format!("expected the préétabli's transfer id {e}"),
            (NotInPreetabli, Fr) => {
                "pas l'un de vos salariés du préétabli, ou ne correspond pas au registre : déclarez-le comme entrant (B04)".into()
            }
            (NotInPreetabli, Ar) => {
                "ليس من أجرائكم في التصريح المسبق أو لا يطابق السجل: صرحوا به كداخل (B04)".into()
            }
            (NotInPreetabli, En) => {
                "not one of your employees on the préétabli, or does not match the registry: declare them as an entrant (B04)".into()
            }
            (MissingEmployee(i), Fr) => format!("salarié {i} du préétabli sans ligne B02"),
            (MissingEmployee(i), Ar) => format!("الأجير {i} من التصريح المسبق بدون سطر B02"),
            (MissingEmployee(i), En) => format!("employee {i} of the préétabli has no B02 line"),
            (DiffersFromPreetabli(e), Fr) => format!("doit reprendre le préétabli : {e}"),
            (DiffersFromPreetabli(e), Ar) => format!("يجب أن يطابق التصريح المسبق: {e}"),
            (DiffersFromPreetabli(e), En) => format!("must repeat the préétabli: {e}"),
            (EntrantCinRequired, Fr) => {
                "un entrant se déclare avec son numéro de CIN : une personne n'est rattachée qu'au vu de plusieurs identifiants".into()
            }
            (EntrantCinRequired, Ar) => {
                "يصرح بالداخل برقم بطاقته الوطنية: لا يربط الشخص إلا بعدة معرفات".into()
            }
            (EntrantCinRequired, En) => {
                "an entrant is declared with their CIN: a person is linked only on more than one identifier".into()
            }
            (AlreadyDeclared, Fr) => {
                "déjà déclaré pour cette période : corrigez par une déclaration complémentaire ou une rectification"
                    .into()
            }
            (AlreadyDeclared, Ar) => "سبق التصريح لهذه الفترة: صححوا بتصريح تكميلي أو بتصحيح".into(),
            (AlreadyDeclared, En) => {
                "already declared for this period: correct it with a complementary declaration or a rectification"
                    .into()
            }
            (MainDeclarationMissing, Fr) => {
                "la déclaration principale de la période n'a pas encore été acceptée".into()
            }
            (MainDeclarationMissing, Ar) => "لم يُقبل بعد التصريح الرئيسي لهذه الفترة".into(),
            (MainDeclarationMissing, En) => {
                "the main declaration of the period has not been accepted yet".into()
            }
            (DeclaredTwice, Fr) => {
                "salarié déjà déclaré pour cette période (dans ce fichier ou une déclaration acceptée)"
                    .into()
            }
            (DeclaredTwice, Ar) => "أجير سبق التصريح به لهذه الفترة (في هذا الملف أو في تصريح مقبول)".into(),
            (RectifiesAnother(e), Fr) => format!(
                "une rectification remplace la déclaration qu'elle rectifie : même affilié, même période, même type ({e})"
            ),
            (RectifiesAnother(e), Ar) => {
                format!("التصحيح يعوض التصريح الذي يصححه: نفس المنخرط ونفس الفترة ونفس النوع ({e})")
            }
            (RectifiesAnother(e), En) => format!(
                "a rectification replaces the declaration it rectifies: same affiliate, period and form ({e})"
            ),
            (DeclaredTwice, En) => {
                "employee already declared for this period (in this file or an accepted declaration)"
                    .into()
            }
        }
    }
}

/// One error in a file: line number (1-based; 0 for the whole file), record type, field, the
/// value found (as it was in the file) and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EbdsError {
    pub line: u64,
    pub record: Option<RecordType>,
    pub field: &'static str,
    pub found: String,
    pub problem: Problem,
}

impl EbdsError {
    /// `ligne 12, B02, N_Jours_Declares = « 27 » : de 0 à 26 jours`.
    pub fn message(&self, lang: Lang) -> String {
        let rec = self.record.map(|r| r.to_string()).unwrap_or_default();
        let rule = self.problem.describe(lang);
        let (line, quote) = match lang {
            Lang::Fr => ("ligne", ("« ", " »")),
            Lang::Ar => ("السطر", ("«", "»")),
            Lang::En => ("line", ("\"", "\"")),
        };
        let mut s = format!("{line} {}", self.line);
        if !rec.is_empty() {
            s.push_str(&format!(", {rec}"));
        }
        if !self.field.is_empty() {
            s.push_str(&format!(", {}", self.field));
            s.push_str(&format!(" = {}{}{}", quote.0, self.found, quote.1));
        }
        s.push_str(" : ");
        s.push_str(&rule);
        s
    }
}

impl fmt::Display for EbdsError {
    /// Without the value found (which may be personal data): for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} {} {}: {}",
            self.line,
            self.record.map(|r| r.to_string()).unwrap_or_default(),
            self.field,
            self.problem.code()
        )
    }
}

/// At most this many errors are listed; the rest are counted.
pub const MAX_ERRORS: usize = 10_000;
