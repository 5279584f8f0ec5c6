'use strict';
// Passwords live only in the registry: responses show settings without them, and every message
// that leaves the action (response or log) goes through a scrubber first.

const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*):([^\s/@]*)@/gi;

// A URL without its password (the user stays, e.g. postgres://user@host/db).
function stripUrlPassword(text) {
  if (typeof text !== 'string') return text;
  try {
    const url = new URL(text);
    if (url.password) {
      url.password = '';
      return url.toString();
    }
    return text;
  } catch (_) {
    return text.replace(USERINFO, '$1$2@');
  }
}

function urlPassword(text) {
  try {
    return decodeURIComponent(new URL(text).password);
  } catch (_) {
    return '';
  }
}

// What a caller may see of a datasource's settings.
function redactSettings(settings) {
  const shown = {};
  for (const [key, value] of Object.entries(settings || {})) {
    if (key === 'password') continue;
    shown[key] = key === 'url' ? stripUrlPassword(value) : value;
  }
  return shown;
}

const hasPassword = (settings) => Boolean(settings && (settings.password || urlPassword(settings.url)));

// The secret strings of a datasource's settings, to scrub from any text.
function secretsOf(settings) {
  const found = [];
  if (settings && typeof settings.password === 'string' && settings.password) found.push(settings.password);
  if (settings && typeof settings.url === 'string') {
    const password = urlPassword(settings.url);
    if (password) found.push(password);
  }
  return found;
}

// A function that removes the given secrets (raw and URL-encoded) and URL userinfo from a text.
function scrubber(secrets) {
  return function scrub(text) {
    let out = String(text).replace(USERINFO, '$1$2@');
    for (const secret of secrets) {
      if (!secret) continue;
      out = out.split(secret).join('***');
      const encoded = encodeURIComponent(secret);
      if (encoded !== secret) out = out.split(encoded).join('***');
    }
    return out;
  };
}

module.exports = { stripUrlPassword, redactSettings, hasPassword, secretsOf, scrubber };
