"""Word lists for the generated catalogue: WebShop's five categories, product types with their Amazon-style
category path, attribute pool, option kinds and price range, and the option value pools.

Attributes are short lower-case phrases like WebShop's ("long lasting", "machine wash"); option values are
lower case, as the original loader makes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATEGORIES = ("beauty", "electronics", "fashion", "food", "furniture")


def _words(text: str) -> tuple[str, ...]:
    """A comma-separated list as a tuple."""
    return tuple(text.split(", "))


def _sentences(text: str) -> tuple[str, ...]:
    """Sentences (ending with '.') as a tuple."""
    return tuple(re.split(r"(?<=\.) ", text))


@dataclass(frozen=True)
class ProductType:
    """One kind of product. noun: how instructions name it. title: how titles name it. query: the search
    query it was "scraped" with (WebShop's `query`). path: `product_category` (levels joined by ' › ').
    attributes: the pool a product draws 2-4 from. options: option name -> value pool key (see OPTION_POOLS).
    price: (low, high) in dollars."""

    category: str
    noun: str
    title: str
    query: str
    path: str
    attributes: tuple[str, ...]
    options: tuple[tuple[str, str], ...]
    price: tuple[float, float]


def _t(category, noun, title, query, path, attributes, options, price):
    return ProductType(category, noun, title, query, path, tuple(attributes.split(", ")), options, price)


_B = "Beauty & Personal Care › "
_G = "Grocery & Gourmet Food › "
_F = "Clothing, Shoes & Jewelry › "
_H = "Home & Kitchen › Furniture › "
_E = "Electronics › "

PRODUCT_TYPES: tuple[ProductType, ...] = (
    # beauty
    _t(
        "beauty",
        "deodorant",
        "Deodorant Stick",
        "deodorant",
        _B + "Personal Care › Deodorants & Antiperspirants",
        "aluminum free, long lasting, cruelty free, natural ingredients, sensitive skin, paraben free",
        (("scent", "scent"), ("size", "small_volume")),
        (5, 28),
    ),
    _t(
        "beauty",
        "shampoo",
        "Shampoo",
        "shampoo",
        _B + "Hair Care › Shampoo & Conditioner › Shampoos",
        "sulfate free, dry hair, paraben free, hair growth, color treated, cruelty free",
        (("scent", "scent"), ("size", "volume")),
        (6, 40),
    ),
    _t(
        "beauty",
        "face moisturizer",
        "Face Moisturizer Cream",
        "face moisturizer",
        _B + "Skin Care › Face › Creams & Moisturizers",
        "anti aging, fine lines, dry skin, hyaluronic acid, fragrance free, non greasy",
        (("size", "small_volume"),),
        (9, 60),
    ),
    _t(
        "beauty",
        "lipstick",
        "Matte Lipstick",
        "lipstick",
        _B + "Makeup › Lips › Lipstick",
        "long lasting, cruelty free, highly pigmented, vegan formula, easy apply",
        (("color", "makeup_color"),),
        (5, 30),
    ),
    _t(
        "beauty",
        "nail polish",
        "Nail Polish",
        "nail polish",
        _B + "Foot, Hand & Nail Care › Nail Polish",
        "quick dry, non toxic, long lasting, high gloss, easy apply",
        (("color", "makeup_color"), ("size", "small_volume")),
        (4, 22),
    ),
    _t(
        "beauty",
        "hair dryer",
        "Ionic Hair Dryer",
        "hair dryer",
        _B + "Hair Care › Styling Tools & Appliances › Hair Dryers",
        "fast drying, low noise, lightweight design, travel size, heat protection",
        (("color", "color"),),
        (18, 120),
    ),
    _t(
        "beauty",
        "makeup brush set",
        "Makeup Brush Set",
        "makeup brushes",
        _B + "Tools & Accessories › Makeup Brushes & Tools › Brush Sets",
        "synthetic hair, easy clean, travel case, soft bristles, high quality",
        (("color", "color"), ("size", "pieces")),
        (7, 45),
    ),
    _t(
        "beauty",
        "body wash",
        "Body Wash",
        "body wash",
        _B + "Personal Care › Bath & Bathing Accessories › Body Washes",
        "natural ingredients, dry skin, sulfate free, moisturizing formula, paraben free",
        (("scent", "scent"), ("size", "volume")),
        (5, 30),
    ),
    _t(
        "beauty",
        "sunscreen",
        "Sunscreen Lotion",
        "sunscreen",
        _B + "Skin Care › Sunscreens & Tanning Products",
        "water resistant, reef safe, broad spectrum, oil free, sensitive skin",
        (("size", "small_volume"),),
        (7, 35),
    ),
    _t(
        "beauty",
        "eyeshadow palette",
        "Eyeshadow Palette",
        "eyeshadow palette",
        _B + "Makeup › Eyes › Eyeshadow",
        "highly pigmented, long lasting, cruelty free, easy blend, shimmer finish",
        (("color", "makeup_color"),),
        (8, 50),
    ),
    # electronics
    _t(
        "electronics",
        "wireless earbuds",
        "Wireless Earbuds",
        "wireless earbuds",
        _E + "Headphones, Earbuds & Accessories › Earbud Headphones",
        "noise cancelling, wireless charging, long battery life, water resistant, hands free",
        (("color", "color"),),
        (19, 150),
    ),
    _t(
        "electronics",
        "phone case",
        "Phone Case",
        "phone case",
        _E + "Cell Phones & Accessories › Cases & Covers",
        "shockproof design, wireless charging, slim fit, easy install, scratch resistant",
        (("color", "color"), ("style", "phone_model")),
        (6, 35),
    ),
    _t(
        "electronics",
        "hdmi cable",
        "HDMI Cable",
        "hdmi cable",
        _E + "Accessories & Supplies › Cables › HDMI Cables",
        "high speed, gold plated, 4k ultra hd, plug and play, braided nylon",
        (("size", "cable_length"),),
        (5, 30),
    ),
    _t(
        "electronics",
        "bluetooth speaker",
        "Portable Bluetooth Speaker",
        "bluetooth speaker",
        _E + "Portable Audio & Video › Portable Bluetooth Speakers",
        "water resistant, long battery life, hands free, easy carry, high fidelity",
        (("color", "color"),),
        (15, 140),
    ),
    _t(
        "electronics",
        "wall charger",
        "USB C Wall Charger",
        "usb charger",
        _E + "Cell Phones & Accessories › Chargers & Power Adapters › Wall Chargers",
        "fast charging, compact size, overload protection, travel friendly, dual port",
        (("color", "color"), ("size", "wattage")),
        (8, 45),
    ),
    _t(
        "electronics",
        "wireless mouse",
        "Wireless Mouse",
        "wireless mouse",
        _E + "Computers & Accessories › Keyboards, Mice & Accessories › Mice",
        "ergonomic design, plug and play, long battery life, silent click, usb receiver",
        (("color", "color"),),
        (8, 60),
    ),
    _t(
        "electronics",
        "power bank",
        "Portable Power Bank",
        "power bank",
        _E + "Cell Phones & Accessories › Portable Power Banks",
        "fast charging, high capacity, led display, compact size, dual port",
        (("color", "color"), ("size", "capacity")),
        (14, 70),
    ),
    _t(
        "electronics",
        "security camera",
        "Security Camera",
        "security camera",
        _E + "Camera & Photo › Video Surveillance › Surveillance Cameras",
        "night vision, motion detection, two way audio, easy install, high definition",
        (("size", "camera_pack"),),
        (25, 180),
    ),
    _t(
        "electronics",
        "tv wall mount",
        "TV Wall Mount",
        "tv mount",
        _E + "Television & Video › Accessories › TV Mounts",
        "heavy duty, easy install, full motion, tilt adjustable, cable management",
        (("size", "screen_range"),),
        (15, 90),
    ),
    _t(
        "electronics",
        "keyboard",
        "Mechanical Gaming Keyboard",
        "keyboard",
        _E + "Computers & Accessories › Keyboards, Mice & Accessories › Keyboards",
        "rgb backlit, plug and play, wireless bluetooth, ergonomic design, quiet typing",
        (("color", "color"), ("style", "keyboard_layout")),
        (20, 130),
    ),
    # fashion
    _t(
        "fashion",
        "t-shirt",
        "Crew Neck T-Shirt",
        "t shirts",
        _F + "Men › Clothing › Shirts › T-Shirts",
        "machine wash, cotton spandex, short sleeve, slim fit, moisture wicking, relaxed fit",
        (("color", "color"), ("size", "apparel_size")),
        (8, 35),
    ),
    _t(
        "fashion",
        "dress",
        "Casual Midi Dress",
        "women dress",
        _F + "Women › Clothing › Dresses › Casual",
        "machine wash, polyester spandex, long sleeve, high waist, elastic waist, button closure",
        (("color", "color"), ("size", "apparel_size")),
        (18, 70),
    ),
    _t(
        "fashion",
        "running shoes",
        "Running Shoes",
        "running shoes",
        _F + "Men › Shoes › Athletic › Running",
        "non slip, rubber sole, memory foam, lace up, breathable mesh, arch support",
        (("color", "color"), ("size", "shoe_size")),
        (25, 130),
    ),
    _t(
        "fashion",
        "jeans",
        "Stretch Jeans",
        "jeans",
        _F + "Women › Clothing › Jeans",
        "machine wash, high waist, button closure, stretch fabric, slim fit, straight leg",
        (("color", "denim_color"), ("size", "waist_size")),
        (20, 80),
    ),
    _t(
        "fashion",
        "hoodie",
        "Pullover Hoodie",
        "hoodie",
        _F + "Men › Clothing › Active › Sweatshirts",
        "fleece lined, machine wash, long sleeve, drawstring closure, relaxed fit, kangaroo pocket",
        (("color", "color"), ("size", "apparel_size")),
        (18, 60),
    ),
    _t(
        "fashion",
        "sandals",
        "Flat Sandals",
        "sandals",
        _F + "Women › Shoes › Sandals",
        "open toe, ankle strap, non slip, arch support, rubber sole, quick drying",
        (("color", "color"), ("size", "shoe_size")),
        (15, 60),
    ),
    _t(
        "fashion",
        "leggings",
        "Yoga Leggings",
        "leggings",
        _F + "Women › Clothing › Active › Leggings",
        "high waist, tummy control, moisture wicking, four way stretch, squat proof, machine wash",
        (("color", "color"), ("size", "apparel_size")),
        (12, 45),
    ),
    _t(
        "fashion",
        "baseball cap",
        "Baseball Cap",
        "baseball cap",
        _F + "Men › Accessories › Hats & Caps",
        "adjustable strap, sun protection, quick drying, cotton twill, hand wash",
        (("color", "color"),),
        (8, 30),
    ),
    _t(
        "fashion",
        "wrist watch",
        "Analog Wrist Watch",
        "watch",
        _F + "Men › Watches › Wrist Watches",
        "water resistant, stainless steel, quartz movement, leather strap, easy read",
        (("color", "color"),),
        (25, 200),
    ),
    _t(
        "fashion",
        "athletic socks",
        "Athletic Socks",
        "socks",
        _F + "Men › Clothing › Socks",
        "moisture wicking, arch support, cushioned sole, machine wash, breathable mesh",
        (("color", "color"), ("size", "sock_size")),
        (9, 30),
    ),
    # food
    _t(
        "food",
        "coffee beans",
        "Whole Bean Coffee",
        "coffee beans",
        _G + "Beverages › Coffee › Whole Coffee Beans",
        "gluten free, usda organic, fair trade, medium roast, low acid, non gmo",
        (("flavor name", "coffee_flavor"), ("size", "weight")),
        (9, 45),
    ),
    _t(
        "food",
        "green tea",
        "Green Tea Bags",
        "green tea",
        _G + "Beverages › Tea › Green Tea",
        "usda organic, sugar free, non gmo, individually wrapped, gluten free",
        (("flavor name", "tea_flavor"), ("size", "tea_count")),
        (5, 30),
    ),
    _t(
        "food",
        "protein bars",
        "Protein Bars",
        "protein bars",
        _G + "Snack Foods › Bars › Protein Bars",
        "high protein, gluten free, low sugar, keto friendly, plant based, non gmo",
        (("flavor name", "snack_flavor"), ("size", "bar_count")),
        (12, 45),
    ),
    _t(
        "food",
        "beef jerky",
        "Beef Jerky",
        "beef jerky",
        _G + "Snack Foods › Jerky & Dried Meats",
        "high protein, low fat, gluten free, keto friendly, no sugar added",
        (("flavor name", "jerky_flavor"), ("size", "weight")),
        (8, 40),
    ),
    _t(
        "food",
        "dark chocolate",
        "Dark Chocolate Bar",
        "dark chocolate",
        _G + "Candy & Chocolate › Chocolate Bars",
        "sugar free, dairy free, usda organic, gluten free, individually wrapped, low carb",
        (("flavor name", "chocolate_flavor"), ("size", "bar_count")),
        (6, 35),
    ),
    _t(
        "food",
        "pasta",
        "Penne Pasta",
        "pasta",
        _G + "Pasta & Noodles › Dry Pasta",
        "gluten free, high protein, plant based, non gmo, low carb, usda organic",
        (("size", "weight"),),
        (4, 25),
    ),
    _t(
        "food",
        "olive oil",
        "Extra Virgin Olive Oil",
        "olive oil",
        _G + "Cooking & Baking › Oils › Olive Oil",
        "cold pressed, usda organic, non gmo, first harvest, glass bottle",
        (("size", "volume"),),
        (9, 45),
    ),
    _t(
        "food",
        "granola",
        "Granola Cereal",
        "granola",
        _G + "Breakfast Foods › Cereals › Granola",
        "gluten free, low sugar, high fiber, non gmo, plant based, usda organic",
        (("flavor name", "snack_flavor"), ("size", "weight")),
        (5, 25),
    ),
    _t(
        "food",
        "mixed nuts",
        "Roasted Mixed Nuts",
        "mixed nuts",
        _G + "Snack Foods › Nuts & Seeds › Mixed Nuts",
        "low sodium, keto friendly, gluten free, non gmo, resealable bag",
        (("flavor name", "nut_flavor"), ("size", "weight")),
        (7, 35),
    ),
    _t(
        "food",
        "hot sauce",
        "Hot Sauce",
        "hot sauce",
        _G + "Condiments & Salad Dressings › Hot Sauce",
        "gluten free, sugar free, all natural, low sodium, vegan friendly",
        (("flavor name", "sauce_flavor"), ("size", "small_volume")),
        (4, 25),
    ),
    # furniture
    _t(
        "furniture",
        "office chair",
        "Ergonomic Office Chair",
        "office chair",
        _H + "Home Office Furniture › Home Office Desk Chairs",
        "lumbar support, height adjustable, easy assemble, high back, heavy duty, swivel wheels",
        (("color", "color"),),
        (60, 320),
    ),
    _t(
        "furniture",
        "bookshelf",
        "Bookshelf",
        "bookshelf",
        _H + "Living Room Furniture › Bookcases",
        "easy assemble, space saving, engineered wood, storage space, metal frame",
        (("color", "wood_color"), ("size", "tiers")),
        (35, 200),
    ),
    _t(
        "furniture",
        "coffee table",
        "Coffee Table",
        "coffee table",
        _H + "Living Room Furniture › Coffee Tables",
        "solid wood, storage space, easy assemble, mid century, metal legs",
        (("color", "wood_color"),),
        (45, 260),
    ),
    _t(
        "furniture",
        "nightstand",
        "Nightstand",
        "nightstand",
        _H + "Bedroom Furniture › Nightstands",
        "easy assemble, storage space, solid wood, usb charging, drawer storage",
        (("color", "wood_color"), ("size", "set_size")),
        (30, 160),
    ),
    _t(
        "furniture",
        "bar stools",
        "Bar Stools",
        "bar stools",
        _H + "Kitchen & Dining Room Furniture › Barstools",
        "height adjustable, swivel seat, faux leather, easy assemble, footrest ring",
        (("color", "color"), ("size", "stool_height")),
        (50, 250),
    ),
    _t(
        "furniture",
        "sofa",
        "Loveseat Sofa",
        "sofa",
        _H + "Living Room Furniture › Sofas & Couches",
        "easy assemble, high density foam, solid wood frame, removable cushions, space saving",
        (("color", "color"),),
        (150, 480),
    ),
    _t(
        "furniture",
        "tv stand",
        "TV Stand",
        "tv stand",
        _H + "Living Room Furniture › TV & Media Furniture",
        "storage space, cable management, engineered wood, easy assemble, tempered glass",
        (("color", "wood_color"), ("size", "tv_size")),
        (50, 300),
    ),
    _t(
        "furniture",
        "shoe rack",
        "Shoe Rack",
        "shoe rack",
        _H + "Entryway Furniture › Shoe Organizers",
        "space saving, easy assemble, metal frame, non woven fabric, stackable design",
        (("color", "color"), ("size", "tiers")),
        (15, 70),
    ),
    _t(
        "furniture",
        "dining chairs",
        "Dining Chairs",
        "dining chairs",
        _H + "Kitchen & Dining Room Furniture › Chairs",
        "solid wood, easy assemble, faux leather, upholstered seat, mid century",
        (("color", "color"), ("size", "set_size")),
        (60, 300),
    ),
    _t(
        "furniture",
        "floor lamp",
        "Floor Lamp",
        "floor lamp",
        _H + "Living Room Furniture › Lamps › Floor Lamps",
        "dimmable light, easy install, energy efficient, remote control, living room",
        (("color", "color"),),
        (30, 150),
    ),
)

# Values in a pool normalise (WebShop's colour normaliser) to distinct words where it matters: the
# generator never gives one product two values of one option that normalise to the same word.
OPTION_POOLS: dict[str, tuple[str, ...]] = {
    "color": _words(
        "black, white, navy, gray, red, green, beige, brown, pink, purple, khaki, burgundy, yellow, "
        "orange, teal, ivory, charcoal, silver, gold, blue, olive, coral, mint, lavender, turquoise, "
        "maroon, cream, taupe, multicolor, camo"
    ),
    "makeup_color": _words(
        "ruby red, nude, coral, berry, mauve, plum, pink, wine, rose, peach, cherry, caramel, mocha, "
        "champagne, bronze, fuchsia, lilac, sand, chocolate, copper"
    ),
    "denim_color": ("light wash", "medium wash", "dark wash", "black", "white", "stonewash", "gray", "indigo"),
    "wood_color": ("walnut", "espresso", "white", "black", "oak", "gray", "natural", "cherry", "chestnut", "teal"),
    "scent": _words(
        "lavender, citrus, unscented, coconut, vanilla, eucalyptus, cucumber, sandalwood, "
        "fresh linen, ocean breeze, jasmine, tea tree, green apple, cedarwood"
    ),
    "coffee_flavor": ("original", "hazelnut", "french vanilla", "caramel", "mocha", "cinnamon", "decaf", "espresso"),
    "tea_flavor": ("original", "jasmine", "mint", "lemon", "ginger", "honey", "matcha", "peach"),
    "snack_flavor": _words(
        "chocolate chip, peanut butter, almond, blueberry, cinnamon, coconut, honey oat, "
        "cookies and cream, salted caramel"
    ),
    "jerky_flavor": ("original", "teriyaki", "peppered", "sweet and hot", "hickory smoked", "spicy", "garlic"),
    "chocolate_flavor": ("sea salt", "almond", "orange", "mint", "raspberry", "espresso", "coconut", "chili"),
    "nut_flavor": ("lightly salted", "unsalted", "honey roasted", "sea salt", "smoked", "spicy"),
    "sauce_flavor": ("original", "habanero", "chipotle", "jalapeno", "garlic", "ghost pepper", "mango"),
    "apparel_size": ("x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large"),
    "shoe_size": ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12"),
    "sock_size": ("small", "medium", "large", "x-large"),
    "waist_size": ("26w x 30l", "28w x 30l", "28w x 32l", "30w x 32l", "32w x 32l", "34w x 32l", "36w x 34l"),
    "volume": _words(
        "8 fl oz (pack of 1), 12 fl oz (pack of 1), 16 fl oz (pack of 1), 16 fl oz (pack of 2), "
        "25.4 fl oz (pack of 1), 33.8 fl oz (pack of 1)"
    ),
    "small_volume": _words(
        "1 fl oz (pack of 1), 1.7 fl oz (pack of 1), 2.6 ounce (pack of 1), 2.6 ounce (pack of 2), "
        "3.4 fl oz (pack of 1), 3 ounce (pack of 3), 5 fl oz (pack of 1)"
    ),
    "weight": _words(
        "8 ounce (pack of 1), 12 ounce (pack of 1), 12 ounce (pack of 2), 16 ounce (pack of 1), "
        "1 pound (pack of 2), 2 pound (pack of 1), 2.5 pound (pack of 1)"
    ),
    "tea_count": ("20 count (pack of 1)", "40 count (pack of 1)", "20 count (pack of 6)", "100 count (pack of 1)"),
    "bar_count": ("4 count (pack of 1)", "12 count (pack of 1)", "12 count (pack of 2)", "24 count (pack of 1)"),
    "pieces": ("5 piece", "10 piece", "12 piece", "16 piece", "20 piece"),
    "phone_model": ("iphone 13", "iphone 14", "iphone 14 pro", "iphone 15", "galaxy s23", "galaxy s24", "pixel 8"),
    "cable_length": ("3 feet", "6 feet", "10 feet", "15 feet", "25 feet"),
    "wattage": ("20w", "30w", "45w", "65w", "100w"),
    "capacity": ("5000mah", "10000mah", "20000mah", "26800mah"),
    "camera_pack": ("1 pack", "2 pack", "3 pack", "4 pack"),
    "screen_range": ("26-55 inch", "32-65 inch", "37-75 inch", "42-85 inch"),
    "keyboard_layout": ("full size", "tenkeyless", "60 percent", "75 percent"),
    "tiers": ("2-tier", "3-tier", "4-tier", "5-tier", "6-tier"),
    "set_size": ("set of 1", "set of 2", "set of 4"),
    "stool_height": ("24 inch", "26 inch", "29 inch", "30 inch"),
    "tv_size": ("55 inch", "65 inch", "70 inch", "75 inch"),
}

TITLE_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "beauty": ("Professional", "Daily", "Gentle", "Salon", "Travel", "Everyday", "Premium", "Classic"),
    "electronics": ("Pro", "Ultra", "Smart", "Compact", "Premium", "Max", "Lite", "Plus"),
    "fashion": ("Classic", "Casual", "Everyday", "Athletic", "Vintage", "Essential", "Lightweight", "Soft"),
    "food": ("Gourmet", "Classic", "Artisan", "Family Size", "Premium", "Original", "Farmhouse", "Select"),
    "furniture": ("Modern", "Rustic", "Industrial", "Classic", "Farmhouse", "Minimalist", "Contemporary", "Compact"),
}

AUDIENCES: dict[str, tuple[str, ...]] = {
    "beauty": ("for Women", "for Men", "for All Skin Types", "for Sensitive Skin", ""),
    "electronics": ("for iPhone and Android", "for Home and Office", "for Travel", ""),
    "fashion": ("for Men", "for Women", "for Boys", "for Girls", ""),
    "food": ("Snack Pack", "Bulk Pack", "Variety Pack", ""),
    "furniture": ("for Living Room", "for Bedroom", "for Home Office", "for Small Spaces", ""),
}

FILLER_SENTENCES: dict[str, tuple[str, ...]] = {
    "beauty": _sentences(
        "Dermatologist tested and made without harsh chemicals. A simple step to add to your daily routine. "
        "Comes in recyclable packaging. Suitable for use at home or on the go."
    ),
    "electronics": _sentences(
        "Backed by a 12 month warranty and friendly customer support. Works with most popular devices out of "
        "the box. Built from durable materials for everyday use. Includes a quick start guide."
    ),
    "fashion": _sentences(
        "Pairs easily with the rest of your wardrobe. Please check the size chart before ordering. "
        "Made for all day comfort. A great gift for friends and family."
    ),
    "food": _sentences(
        "Packed fresh in a facility that follows strict quality standards. A tasty choice for breakfast, "
        "lunch or a quick snack. Store in a cool, dry place. Made in small batches for rich flavor."
    ),
    "furniture": _sentences(
        "All hardware and step by step instructions are included. Wipe clean with a damp cloth. "
        "Designed to fit any room in your home. Sturdy construction for years of use."
    ),
}

REVIEW_TITLES = _words(
    "Great value, Works as described, Exactly what I needed, Not bad, Would buy again, "
    "Could be better, Love it, Good quality for the price, Disappointed, Pretty good"
)
REVIEW_BODIES = _sentences(
    "Arrived quickly and matches the description. I have been using it for a few weeks and I am happy with it. "
    "The quality is better than I expected for this price. It is fine, but not as nice as the pictures. "
    "My family loves it and we ordered a second one. Does the job, nothing special."
)

BRAND_SYLLABLES = _words(
    "lu, mo, ra, ve, ki, zen, tor, bel, no, sa, fi, qua, ar, dex, pi, mar, co, vi, ta, lo, ne, "
    "ro, sol, ka, ri, mi, dan, el, os, tri, va, nu"
)

INSTRUCTION_TEMPLATES = _words(
    "i am looking for {desc}, i need {desc}, i want to buy {desc}, find me {desc}, "
    "i would like {desc}, i'm looking for {desc}, get me {desc}"
)
