// Walks oidc-provider's development login and consent pages (and searchgate's embedded consent page) without a browser: follows the
// authorize URL through the HTML forms (keeping cookies) until the redirect to redirectUri, and
// returns that URL (with code, state and iss).
export async function walkAuthorize(authorizeUrl, redirectUri, { login = 'alice' } = {}) {
  const jar = new Map();
  let url = authorizeUrl;
  let init = {};
  for (let hop = 0; hop < 20; hop++) {
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...init.headers, cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const cookie of res.headers.getSetCookie()) {
      const [, name, value] = cookie.match(/^([^=]+)=([^;]*)/);
      if (/expires=Thu, 01 Jan 1970/i.test(cookie) || value === '') jar.delete(name); else jar.set(name, value);
    }
    init = {};
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location'), url).href;
      if (url.startsWith(redirectUri)) return url;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`HTTP ${res.status} at ${url}: ${html.slice(0, 500)}`);
    const form = html.match(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/);
    if (!form) throw new Error(`no form at ${url}: ${html.slice(0, 500)}`);
    const fields = new URLSearchParams();
    for (const [, name, value = ''] of form[2].matchAll(/<input[^>]*name="([^"]+)"(?:[^>]*value="([^"]*)")?/g)) {
      fields.set(name, value);
    }
    // A named submit button (searchgate's consent page: decision=approve) is the first one.
    const button = form[2].match(/<button[^>]*name="([^"]+)"[^>]*value="([^"]*)"/);
    if (button) fields.set(button[1], button[2]);
    if (fields.get('prompt') === 'login') { fields.set('login', login); fields.set('password', 'x'); }
    url = new URL(form[1].replaceAll('&amp;', '&'), url).href;
    init = { method: 'POST', body: fields, headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  throw new Error('too many redirects');
}
