//! Word lists for synthetic data: common Moroccan given names and family names (Latin and
//! Arabic script), cities, activities. Combinations are random; no real person is described.

pub const MALE_FIRST: &[(&str, &str)] = &[
    ("Mohamed", "محمد"), ("Ahmed", "أحمد"), ("Youssef", "يوسف"), ("Hamza", "حمزة"), ("Omar", "عمر"),
    ("Mehdi", "المهدي"), ("Rachid", "رشيد"), ("Said", "سعيد"), ("Abdelkader", "عبد القادر"), ("Karim", "كريم"),
    ("Hicham", "هشام"), ("Mustapha", "مصطفى"), ("Khalid", "خالد"), ("Anas", "أنس"), ("Ayoub", "أيوب"),
    ("Yassine", "ياسين"), ("Driss", "إدريس"), ("Abdellah", "عبد الله"), ("Nabil", "نبيل"), ("Ilyas", "إلياس"),
    ("Othmane", "عثمان"), ("Brahim", "إبراهيم"), ("Jamal", "جمال"), ("Tarik", "طارق"),
];

pub const FEMALE_FIRST: &[(&str, &str)] = &[
    ("Fatima", "فاطمة"), ("Khadija", "خديجة"), ("Aicha", "عائشة"), ("Meryem", "مريم"), ("Salma", "سلمى"),
    ("Imane", "إيمان"), ("Nadia", "نادية"), ("Hanane", "حنان"), ("Zineb", "زينب"), ("Sanae", "سناء"),
    ("Latifa", "لطيفة"), ("Houda", "هدى"), ("Asmae", "أسماء"), ("Naima", "نعيمة"), ("Ghizlane", "غزلان"),
    ("Loubna", "لبنى"), ("Samira", "سميرة"), ("Rajae", "رجاء"), ("Hajar", "هاجر"), ("Kenza", "كنزة"),
];

pub const LAST_NAMES: &[(&str, &str)] = &[
    ("Alaoui", "العلوي"), ("Bennani", "بناني"), ("Tazi", "التازي"), ("El Idrissi", "الإدريسي"), ("Berrada", "برادة"),
    ("Chraibi", "الشرايبي"), ("El Amrani", "العمراني"), ("Benjelloun", "بنجلون"), ("Lahlou", "لحلو"), ("Fassi", "الفاسي"),
    ("Ouazzani", "الوزاني"), ("Bouzidi", "البوزيدي"), ("El Mansouri", "المنصوري"), ("Naciri", "الناصري"), ("Kettani", "الكتاني"),
    ("Sqalli", "السقلي"), ("Benali", "بنعلي"), ("Ait Ouahmane", "آيت واحمان"), ("Amzil", "أمزيل"), ("Ouchen", "أوشن"),
    ("Hajji", "الحجي"), ("Zerouali", "الزروالي"), ("Belkadi", "بلقاضي"), ("Cherkaoui", "الشرقاوي"), ("Mernissi", "المرنيسي"),
    ("El Khattabi", "الخطابي"), ("Rahmouni", "الرحموني"), ("Sebti", "السبتي"), ("Filali", "الفيلالي"), ("Boukhari", "البخاري"),
];

pub const CITIES: &[&str] = &[
    "Casablanca", "Rabat", "Tanger", "Fes", "Marrakech", "Agadir", "Meknes", "Oujda", "Kenitra", "Tetouan", "Safi",
    "El Jadida", "Nador", "Beni Mellal", "Laayoune", "Khouribga", "Settat", "Mohammedia", "Sale", "Temara",
];

pub const ACTIVITIES: &[&str] = &[
    "Textile et habillement", "Commerce de gros", "Commerce de detail", "Batiment et travaux publics", "Agroalimentaire",
    "Transport routier", "Centre d'appels", "Hotellerie et restauration", "Industrie automobile", "Aeronautique",
    "Services informatiques", "Cabinet comptable", "Sante - clinique", "Enseignement prive", "Securite et gardiennage",
    "Nettoyage industriel", "Peche maritime", "Agriculture", "Pharmacie", "Logistique",
];

pub const COMPANY_WORDS: &[&str] = &[
    "Atlas", "Sahara", "Rif", "Anfa", "Souss", "Oasis", "Medina", "Argane", "Tafilalet", "Doukkala", "Bouregreg",
    "Ifrane", "Toubkal", "Massira", "Nour", "Amal", "Najah", "Baraka", "Tadamon", "Al Wifaq",
];

pub const COMPANY_TRADES: &[&str] = &[
    "Textile", "Distribution", "Construction", "Agro", "Transport", "Services", "Industries", "Logistique", "Conseil",
    "Froid", "Emballage", "Travaux", "Negoce", "Informatique", "Sante",
];

pub const COMPANY_FORMS: &[&str] = &["SARL", "SA", "SARL AU", "SNC", "SAS"];

pub const STREET_KINDS: &[&str] = &["Rue", "Avenue", "Boulevard", "Derb", "Lotissement", "Residence"];

pub const STREET_NAMES: &[&str] = &[
    "Hassan II", "Mohammed V", "des FAR", "Zerktouni", "Al Massira", "Ibn Sina", "Al Qods", "Moulay Youssef",
    "Abdelmoumen", "Annasr", "Al Amal", "Oued Sebou", "Ibn Battouta", "Al Andalous", "Bir Anzarane",
];
