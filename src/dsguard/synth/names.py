"""Word lists for the synthetic tenant: people, organisations and message subjects.

Everything here is invented. Organisation names are combined into domains under the reserved
``.example`` / ``.test`` TLDs only, so nothing can be mistaken for a real party.
"""

from __future__ import annotations

FIRST_NAMES: tuple[str, ...] = (
    "Aaliyah", "Aaron", "Abigail", "Adam", "Adrian", "Aisha", "Alan", "Alba", "Alex", "Alice",
    "Amara", "Amir", "Ana", "Andre", "Andrea", "Angela", "Anika", "Anton", "Arjun", "Ava",
    "Beatriz", "Ben", "Bianca", "Boris", "Brandon", "Bruno", "Camila", "Carla", "Carlos",
    "Caroline", "Chen", "Chloe", "Chris", "Clara", "Daniel", "Dana", "Daria", "David", "Deepa",
    "Diego", "Dmitri", "Elena", "Eli", "Elif", "Emeka", "Emma", "Eric", "Esther", "Ethan",
    "Fatima", "Felix", "Fiona", "Francesca", "Gabriel", "Grace", "Hana", "Hannah", "Hassan",
    "Helena", "Henry", "Hiro", "Ibrahim", "Ines", "Irene", "Isaac", "Ivan", "Jack", "Jamal",
    "James", "Jana", "Javier", "Jin", "Joanna", "Jonas", "Jordan", "Julia", "Kai", "Kamala",
    "Karen", "Kenji", "Kofi", "Laila", "Lars", "Laura", "Leo", "Lin", "Lucas", "Lucia", "Maya",
    "Marco", "Maria", "Mark", "Marta", "Mateo", "Mei", "Mia", "Michael", "Mohammed", "Nadia",
    "Naomi", "Nikhil", "Nina", "Noah", "Olga", "Oliver", "Omar", "Paula", "Pedro", "Priya",
    "Rafael", "Rahul", "Rania", "Rebecca", "Ricardo", "Rosa", "Ryan", "Sakura", "Samuel",
    "Sara", "Sean", "Sofia", "Stefan", "Tariq", "Tessa", "Thomas", "Tom", "Valentina",
    "Victor", "Wei", "Yara", "Yusuf", "Zara", "Zoe",
)

LAST_NAMES: tuple[str, ...] = (
    "Abbott", "Adeyemi", "Agarwal", "Almeida", "Andersen", "Bauer", "Becker", "Bergstrom",
    "Bianchi", "Brennan", "Brooks", "Castillo", "Chowdhury", "Costa", "Dalton", "Demir",
    "Diaz", "Dubois", "Eriksen", "Farouk", "Fischer", "Fontaine", "Garcia", "Greene",
    "Gupta", "Hale", "Hansen", "Hartley", "Hoffmann", "Horvat", "Ibarra", "Iyer", "Jansen",
    "Jensen", "Kaplan", "Kato", "Keller", "Kim", "Kowalski", "Kruger", "Lambert", "Larsen",
    "Lindqvist", "Lopez", "Maddox", "Mahmoud", "Marino", "Martens", "Mendes", "Meyer",
    "Morales", "Moreau", "Murphy", "Nakamura", "Navarro", "Nguyen", "Novak", "Okafor",
    "Olsen", "Ortega", "Osei", "Park", "Patel", "Pereira", "Petrov", "Quinn", "Ramos",
    "Reyes", "Richter", "Rossi", "Russo", "Sahin", "Santos", "Sato", "Schmidt", "Schneider",
    "Silva", "Singh", "Sorensen", "Suzuki", "Tanaka", "Thornton", "Torres", "Vargas", "Vasquez",
    "Vogel", "Wagner", "Walsh", "Weber", "Whitfield", "Wolff", "Yamamoto", "Yilmaz", "Young",
    "Zhang", "Ziegler",
)

ORG_WORDS_A: tuple[str, ...] = (
    "acme", "alder", "alpine", "amber", "apex", "arbor", "atlas", "aurora", "beacon", "birch",
    "blue", "bright", "cedar", "clear", "cobalt", "coastal", "copper", "crest", "delta", "east",
    "ember", "evergreen", "fern", "first", "globex", "golden", "granite", "harbor", "helix",
    "initech", "iron", "juniper", "keystone", "lake", "lumen", "maple", "meridian", "metro",
    "north", "nova", "oak", "orbit", "pacific", "pine", "prime", "quartz", "red", "ridge",
    "river", "sage", "silver", "south", "star", "summit", "tidal", "umbrella", "vertex", "west",
    "willow", "zenith",
)

ORG_WORDS_B: tuple[str, ...] = (
    "analytics", "bank", "bio", "build", "capital", "care", "chem", "clinic", "consulting",
    "data", "design", "dynamics", "energy", "engineering", "foods", "freight", "group",
    "health", "holdings", "insurance", "labs", "law", "legal", "logistics", "media", "medical",
    "metals", "motors", "networks", "partners", "pharma", "printing", "realty", "research",
    "retail", "robotics", "security", "software", "supply", "systems", "tech", "trading",
    "travel", "ventures",
)

DEPARTMENTS: tuple[tuple[str, float], ...] = (
    ("Executive", 0.01),
    ("Finance", 0.07),
    ("Human Resources", 0.04),
    ("Sales", 0.18),
    ("Marketing", 0.07),
    ("IT", 0.06),
    ("Research & Development", 0.22),
    ("Operations", 0.2),
    ("Legal", 0.03),
    ("Facilities", 0.03),
    ("Quality Assurance", 0.09),
)

# Subject templates. "{n}" is replaced by a number; templates without it are used as is.
SUBJECTS_EXTERNAL: tuple[str, ...] = (
    "Invoice {n} from your supplier",
    "Quote request {n}",
    "Purchase order PO-{n}",
    "Meeting follow-up",
    "Proposal for Q1 project",
    "Shipment notification {n}",
    "Contract draft for review",
    "Your order {n} has shipped",
    "Webinar invitation: supply chain trends",
    "Statement of account",
    "Updated price list",
    "Partnership opportunity",
    "Agenda for next week",
    "Delivery schedule update",
    "Remittance advice {n}",
    "Conference registration confirmed",
    "Monthly newsletter",
    "Request for information",
    "Samples dispatched",
    "Audit documentation request",
    "Introduction",
    "Thank you for your time today",
    "Regulatory update {n}",
    "Your support case {n}",
    "Payment confirmation {n}",
)

SUBJECTS_INTERNAL: tuple[str, ...] = (
    "Weekly sync notes",
    "Budget review",
    "Draft slides for Thursday",
    "Team lunch on Friday",
    "Project timeline",
    "Quick question",
    "Lab results batch {n}",
    "Travel plans",
    "Updated spreadsheet",
    "Customer escalation {n}",
    "Onboarding checklist",
    "Holiday schedule",
    "Minutes from the steering committee",
    "Training session reminder",
    "Expense report",
    "Forecast update",
    "Release notes v{n}",
    "Inventory count",
    "Policy review",
    "Office move logistics",
    "Sprint {n} retrospective",
    "Can you review this?",
    "Action items",
    "Quarterly targets",
)

SUBJECTS_OUTBOUND: tuple[str, ...] = (
    "Re: Quote request {n}",
    "Purchase order PO-{n}",
    "Follow-up on our call",
    "Signed contract",
    "Invoice {n}",
    "Documents you requested",
    "Meeting confirmation",
    "Proposal",
    "Order confirmation {n}",
    "Samples",
)

SUBJECTS_BULK: tuple[str, ...] = (
    "Last chance: 30% off all plans",
    "Your weekly industry digest",
    "New whitepaper: cloud cost control",
    "Exclusive invitation",
    "Product update {n}",
    "Don't miss our spring summit",
)

SUBJECTS_SPAM: tuple[str, ...] = (
    "You have won a gift card",
    "Re: outstanding invoice {n}",
    "Urgent business proposal",
    "Cheap medication online",
    "Your account will be suspended",
    "Crypto investment returns {n}%",
)

SUBJECTS_SCAN: tuple[str, ...] = (
    "Message from {printer}",
    "Scanned from {printer}",
    "Scan to e-mail from {printer}",
)

SUBJECTS_HR: tuple[str, ...] = (
    "Your payslip for the period is available",
    "Leave request {n} approved",
    "Timesheet reminder",
    "Benefits enrollment confirmation",
    "Training assignment: annual compliance",
    "Manager approval required: request {n}",
)

SUBJECTS_HELPDESK: tuple[str, ...] = (
    "[Ticket #{n}] New comment",
    "[Ticket #{n}] Assigned to you",
    "[Ticket #{n}] Resolved",
    "[Ticket #{n}] Customer replied",
    "[Ticket #{n}] SLA warning",
)

SUBJECTS_INVOICE: tuple[str, ...] = (
    "Invoice INV-{n} ready for approval",
    "Payment run {n} completed",
    "Supplier invoice INV-{n} received",
    "Credit note CN-{n}",
)

SUBJECTS_ALERTS: tuple[str, ...] = (
    "Door controller {n} offline",
    "HVAC alarm: zone {n} temperature high",
    "Badge reader {n} tamper alert",
    "UPS on battery: rack {n}",
    "Daily access control report",
)

SUBJECTS_NEWSLETTER: tuple[str, ...] = (
    "Inside {org}: this week's staff newsletter",
    "{org} news: town hall recap",
)

SUBJECTS_SURVEY: tuple[str, ...] = (
    "We want your feedback: employee pulse survey",
    "Reminder: pulse survey closes soon",
    "Your voice matters - 2 minute survey",
)

SUBJECTS_EXPENSES: tuple[str, ...] = (
    "Expense report ER-{n} submitted for approval",
    "Expense report ER-{n} approved",
    "Receipt missing for ER-{n}",
)

COUNTRIES_TRAVEL: tuple[tuple[str, str], ...] = (
    ("GB", "London"),
    ("DE", "Frankfurt am Main"),
    ("FR", "Paris"),
    ("JP", "Tokyo"),
    ("SG", "Singapore"),
    ("BR", "Sao Paulo"),
    ("IN", "Bengaluru"),
    ("CA", "Toronto"),
    ("MX", "Mexico City"),
    ("ES", "Madrid"),
    ("AU", "Sydney"),
    ("AE", "Dubai"),
)

COUNTRIES_EXTERNAL: tuple[str, ...] = (
    "US", "US", "US", "US", "GB", "DE", "NL", "FR", "CA", "IE", "SE", "JP", "IN", "CH", "ES",
    "IT", "AU", "SG", "BE", "DK",
)
