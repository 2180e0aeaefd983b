// The demo catalogue: six products with ids, SKUs, prices (in cents) and a
// small SVG drawing each. Prices are integers of cents so totals are exact.

export const CURRENCY = 'USD';

export const PRODUCTS = [
  {
    id: 'slacks-charcoal', sku: 'TL-SLK-001', name: 'Charcoal Wool Slacks', brand: 'Threadline',
    category: 'Trousers', price: 8900, color: '#3b4252', accent: '#5b6478', shape: 'slacks',
    sizes: ['28', '30', '32', '34', '36'],
    blurb: 'Tailored, machine-washable wool slacks with a tapered leg. The ones the email team keeps offering a discount on after you bought them.',
  },
  {
    id: 'tee-organic', sku: 'TL-TEE-014', name: 'Organic Cotton Tee', brand: 'Threadline',
    category: 'Tops', price: 2400, color: '#e9e4d8', accent: '#cfc7b3', shape: 'tee',
    sizes: ['XS', 'S', 'M', 'L', 'XL'],
    blurb: 'A heavyweight tee in undyed organic cotton that softens with every wash.',
  },
  {
    id: 'sweater-merino', sku: 'TL-SWT-007', name: 'Merino Crew Sweater', brand: 'Threadline',
    category: 'Knitwear', price: 11800, color: '#8c2f39', accent: '#a8434e', shape: 'sweater',
    sizes: ['S', 'M', 'L', 'XL'],
    blurb: 'Fine-gauge merino that keeps you warm on the train and cool in the office.',
  },
  {
    id: 'jacket-denim', sku: 'TL-JKT-003', name: 'Selvedge Denim Jacket', brand: 'Threadline',
    category: 'Outerwear', price: 16500, color: '#2f5d8a', accent: '#457bb0', shape: 'jacket',
    sizes: ['S', 'M', 'L', 'XL'],
    blurb: 'Raw selvedge denim, copper buttons, and a fit that gets better every month.',
  },
  {
    id: 'sneakers-canvas', sku: 'TL-SNK-021', name: 'Canvas Court Sneakers', brand: 'Threadline',
    category: 'Shoes', price: 7400, color: '#f2f2ee', accent: '#2d6a4f', shape: 'sneaker',
    sizes: ['38', '39', '40', '41', '42', '43', '44'],
    blurb: 'Vulcanised rubber soles and a cotton canvas upper. Goes with the slacks.',
  },
  {
    id: 'tote-canvas', sku: 'TL-BAG-002', name: 'Waxed Canvas Tote', brand: 'Threadline',
    category: 'Bags', price: 5600, color: '#c8a165', accent: '#8a6a3b', shape: 'tote',
    sizes: null,
    blurb: 'A roomy, water-resistant tote with leather handles for the daily commute.',
  },
];

const BY_ID = new Map(PRODUCTS.map((p) => [p.id, p]));

export function product(id) {
  return BY_ID.get(id);
}

/** Cents → "$89.00". */
export function money(cents) {
  return new Intl.NumberFormat('en-US', { style: 'currency', currency: CURRENCY }).format(cents / 100);
}

/** Cents → the decimal number the Segment spec expects in `price`/`revenue`. */
export function amount(cents) {
  return Math.round(cents) / 100;
}

// One silhouette per product shape, drawn on a 200×200 canvas. Colours are
// attributes (not style attributes) so the strict CSP allows them.
const SHAPES = {
  slacks: (c, a) => `
    <path d="M62 30h76l10 150h-40l-8-104-8 104H52z" fill="${c}"/>
    <path d="M62 30h76v14H62z" fill="${a}"/>
    <path d="M100 44v34" stroke="${a}" stroke-width="2"/>
    <path d="M74 52c6 8 16 10 22 8M126 52c-6 8-16 10-22 8" stroke="${a}" stroke-width="2" fill="none"/>`,
  tee: (c, a) => `
    <path d="M70 34l-40 22 14 30 18-8v90h76V78l18 8 14-30-40-22c-6 12-18 18-30 18S76 46 70 34z" fill="${c}" stroke="${a}" stroke-width="3" stroke-linejoin="round"/>
    <path d="M70 34c6 12 18 18 30 18s24-6 30-18" fill="none" stroke="${a}" stroke-width="4"/>`,
  sweater: (c, a) => `
    <path d="M72 32l-36 18-12 108 24 4 14-80v96h76V82l14 80 24-4-12-108-36-18c-6 10-16 16-28 16s-22-6-28-16z" fill="${c}"/>
    <path d="M62 168h76v8H62zM24 152l24 4-1 8-24-4zM176 152l-24 4 1 8 24-4z" fill="${a}"/>
    <path d="M72 32c6 10 16 16 28 16s22-6 28-16" fill="none" stroke="${a}" stroke-width="6"/>`,
  jacket: (c, a) => `
    <path d="M70 30l-36 20-12 108 22 4 16-76v92h80V86l16 76 22-4-12-108-36-20-30 26z" fill="${c}"/>
    <path d="M70 30l30 26 30-26 8 8-38 34-38-34z" fill="${a}"/>
    <path d="M100 72v104" stroke="${a}" stroke-width="3"/>
    <circle cx="106" cy="90" r="3" fill="#d9a441"/><circle cx="106" cy="118" r="3" fill="#d9a441"/><circle cx="106" cy="146" r="3" fill="#d9a441"/>
    <path d="M70 100h20v16H70zM112 100h20v16h-20z" fill="none" stroke="${a}" stroke-width="2"/>`,
  sneaker: (c, a) => `
    <path d="M24 128c0-20 8-44 18-50 10 10 28 12 40 4l22 22c14 12 44 14 64 18 12 2 12 22 8 26H28c-4 0-4-12-4-20z" fill="${c}" stroke="#9aa1a9" stroke-width="3" stroke-linejoin="round"/>
    <path d="M24 140h152v14c0 4-2 6-6 6H30c-4 0-6-2-6-6z" fill="${a}"/>
    <path d="M66 92l10 8M74 86l12 10M84 98l10 8" stroke="${a}" stroke-width="4" stroke-linecap="round"/>`,
  tote: (c, a) => `
    <path d="M72 70c0-30 56-30 56 0" fill="none" stroke="${a}" stroke-width="8" stroke-linecap="round"/>
    <path d="M44 68h112l10 110H34z" fill="${c}"/>
    <path d="M44 68h112l2 18H42z" fill="${a}" opacity=".45"/>
    <path d="M68 86v12M132 86v12" stroke="${a}" stroke-width="6" stroke-linecap="round"/>`,
};

/** The product's picture as an SVG string (no user data in it). */
export function picture(p, label = p.name) {
  const draw = SHAPES[p.shape] || SHAPES.tote;
  return `<svg class="pic" viewBox="0 0 200 200" role="img" aria-label="${label}">${draw(p.color, p.accent)}</svg>`;
}
