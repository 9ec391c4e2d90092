# Sourced by the bench scripts: installs oha from crates.io when it is missing.
if ! command -v oha >/dev/null 2>&1; then
  if ! curl -fsS -o /dev/null --max-time 10 https://index.crates.io/config.json; then
    echo "oha is missing and crates.io cannot be reached to install it" >&2
    exit 1
  fi
  echo "installing oha (cargo install oha --locked)…"
  cargo install oha --locked
fi
