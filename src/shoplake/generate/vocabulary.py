"""Fixed word lists and the product hierarchy the generator draws realistic values from."""

from __future__ import annotations

# No value in this module may contain a comma, a quote or a line break: the CSV writer
# never quotes, so such a value would make it fail loudly.

FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony",
    "Sandra", "Mark", "Margaret", "Donald", "Ashley", "Steven", "Kimberly", "Andrew", "Emily",
    "Paul", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Ronald", "Rebecca", "Jason", "Laura",
    "Edward", "Sharon", "Jeffrey", "Cynthia", "Ryan", "Kathleen", "Jacob", "Amy", "Gary", "Angela",
    "Nicholas", "Anna", "Eric", "Brenda", "Jonathan", "Emma", "Stephen", "Olivia", "Larry",
    "Sophie",
    "Lukas", "Mia", "Noah", "Hannah", "Oliver", "Lea", "Hugo", "Chloe", "Mateo", "Lucia", "Leon",
    "Giulia", "Finn", "Amelia", "Arthur", "Isla", "Elias", "Clara", "Louis", "Ines", "Jan", "Sofia",
)

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer",
    "Wagner", "Becker", "Dubois", "Laurent", "Bernard", "Moreau", "Lefevre", "Rossi", "Russo",
    "Ferrari", "Esposito", "Bianchi", "Romano", "Fernandez", "Ruiz", "Moreno", "Jansen", "DeVries",
    "Bakker", "Visser", "Evans", "Hughes", "Edwards", "Collins", "Stewart", "Morris", "Murphy",
    "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Kelly", "Howard",
)

# (city, ISO country code); the US dominates like it does for a US-based shop.
CITIES: tuple[tuple[str, str], ...] = (
    ("New York", "US"), ("Los Angeles", "US"), ("Chicago", "US"), ("Houston", "US"),
    ("Phoenix", "US"), ("Philadelphia", "US"), ("San Antonio", "US"), ("San Diego", "US"),
    ("Dallas", "US"), ("Austin", "US"), ("Seattle", "US"), ("Denver", "US"), ("Boston", "US"),
    ("Portland", "US"), ("Atlanta", "US"), ("Miami", "US"), ("Minneapolis", "US"),
    ("San Francisco", "US"), ("Nashville", "US"), ("Detroit", "US"), ("Toronto", "CA"),
    ("Vancouver", "CA"), ("London", "GB"), ("Manchester", "GB"), ("Edinburgh", "GB"),
    ("Berlin", "DE"), ("Munich", "DE"), ("Hamburg", "DE"), ("Paris", "FR"), ("Lyon", "FR"),
    ("Madrid", "ES"), ("Barcelona", "ES"), ("Milan", "IT"), ("Rome", "IT"), ("Amsterdam", "NL"),
    ("Rotterdam", "NL"),
)
# Relative weight of each city above, aligned by position.
CITY_WEIGHTS: tuple[float, ...] = (
    9, 8, 6, 5, 4, 4, 3, 3, 4, 3, 4, 3, 4, 3, 3, 3, 2, 4, 2, 2, 2, 1,
    2, 1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.3,
)

CALLING_CODES: dict[str, int] = {
    "US": 1, "CA": 1, "GB": 44, "DE": 49, "FR": 33, "ES": 34, "IT": 39, "NL": 31,
}
CURRENCIES: dict[str, str] = {
    "US": "USD", "CA": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "ES": "EUR", "IT": "EUR",
    "NL": "EUR",
}

SEGMENTS: tuple[str, ...] = ("consumer", "corporate", "home_office")
SEGMENT_WEIGHTS: tuple[float, ...] = (0.72, 0.18, 0.10)
LIFECYCLE_STAGES: tuple[str, ...] = ("new", "active", "at_risk", "churned")
# Weights of the stages after "new" (which follows from the sign-up date), aligned by position.
ESTABLISHED_STAGE_WEIGHTS: tuple[float, ...] = (0.64, 0.20, 0.16)

BRANDS: tuple[str, ...] = (
    "Northwind", "Acme", "Bluebird", "Summit", "Urban Thread", "Evergreen", "Lumen", "Kestrel",
    "Harbor & Co", "Pioneer", "Solstice", "Ironwood", "Maple Lane", "Vertex", "Coastal",
    "Fieldstone", "Nimbus", "Redwood", "Silverline", "Trailhead",
)
ADJECTIVES: tuple[str, ...] = (
    "Classic", "Essential", "Premium", "Everyday", "Lightweight", "Vintage", "Modern", "Pro",
    "Eco", "Deluxe", "Compact", "Signature", "Relaxed", "Active", "Heritage", "Smart",
)
COLORS: tuple[str, ...] = (
    "Black", "White", "Navy", "Grey", "Olive", "Red", "Blue", "Beige", "Green", "Charcoal",
    "Sand", "Burgundy",
)

# department -> category -> subcategory -> typical retail price in dollars
HIERARCHY: dict[str, dict[str, dict[str, float]]] = {
    "Women": {
        "Clothing": {"Dresses": 79.0, "Tops": 34.0, "Jeans": 69.0, "Coats": 159.0},
        "Shoes": {"Sneakers": 89.0, "Boots": 129.0, "Sandals": 49.0},
        "Accessories": {"Handbags": 99.0, "Scarves": 29.0, "Jewelry": 59.0},
    },
    "Men": {
        "Clothing": {"Shirts": 49.0, "T-Shirts": 24.0, "Jeans": 69.0, "Jackets": 139.0},
        "Shoes": {"Sneakers": 89.0, "Dress Shoes": 119.0, "Boots": 139.0},
        "Accessories": {"Watches": 179.0, "Belts": 35.0, "Wallets": 45.0},
    },
    "Home": {
        "Kitchen": {"Cookware": 89.0, "Cutlery": 59.0, "Small Appliances": 119.0},
        "Bedding": {"Sheets": 69.0, "Pillows": 39.0, "Duvets": 129.0},
        "Decor": {"Lamps": 74.0, "Rugs": 149.0, "Wall Art": 54.0},
    },
    "Electronics": {
        "Audio": {"Headphones": 129.0, "Speakers": 159.0, "Earbuds": 99.0},
        "Computers": {"Laptops": 999.0, "Monitors": 279.0, "Keyboards": 79.0},
        "Phones": {"Smartphones": 699.0, "Cases": 25.0, "Chargers": 29.0},
    },
    "Sports": {
        "Fitness": {"Yoga Mats": 39.0, "Dumbbells": 59.0, "Resistance Bands": 22.0},
        "Outdoor": {"Tents": 249.0, "Backpacks": 89.0, "Sleeping Bags": 119.0},
        "Cycling": {"Helmets": 69.0, "Bike Lights": 35.0, "Jerseys": 59.0},
    },
    "Beauty": {
        "Skincare": {"Moisturizers": 32.0, "Serums": 45.0, "Sunscreen": 19.0},
        "Fragrance": {"Perfume": 89.0, "Cologne": 79.0},
    },
}
# Relative share of the catalogue per department.
DEPARTMENT_WEIGHTS: dict[str, float] = {
    "Women": 0.25, "Men": 0.2, "Home": 0.18, "Electronics": 0.14, "Sports": 0.14, "Beauty": 0.09,
}
DEPARTMENT_CODES: dict[str, str] = {
    "Women": "WMN", "Men": "MEN", "Home": "HOM", "Electronics": "ELC", "Sports": "SPT",
    "Beauty": "BTY",
}

WAREHOUSES: tuple[str, ...] = ("WH01", "WH02", "WH03", "WH04", "WH05")

ORDER_STATUSES: tuple[str, ...] = (
    "created", "processing", "shipped", "delivered", "cancelled", "returned",
)
ORDER_STATUS_WEIGHTS: tuple[float, ...] = (0.10, 0.14, 0.25, 0.37, 0.08, 0.06)
ITEM_STATUSES: tuple[str, ...] = ("placed", "shipped", "delivered", "cancelled", "returned")
CARRIERS: tuple[str, ...] = ("ups", "fedex", "dhl", "usps", "dpd")
CARRIER_WEIGHTS: tuple[float, ...] = (0.32, 0.24, 0.14, 0.22, 0.08)
# Tracking numbers start with a carrier-looking prefix, aligned with CARRIERS.
TRACKING_PREFIXES: tuple[str, ...] = ("1Z", "FX", "JD", "94", "DP")
SHIPPING_STATUSES: tuple[str, ...] = (
    "label_created", "in_transit", "delivered", "lost", "returned",
)

EVENT_TYPES: tuple[str, ...] = (
    "page_view", "add_to_cart", "remove_from_cart", "checkout", "purchase", "search",
)
DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
DEVICE_WEIGHTS: tuple[float, ...] = (0.42, 0.48, 0.10)
SHOP_URL = "https://shop.example.com"
