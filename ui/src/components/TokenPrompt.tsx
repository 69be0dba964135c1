import { useEffect, useState, type FormEvent } from 'react';
import { authState, setToken, subscribeAuth, type AuthState } from '../api/auth';

/**
 * Asks for the API token when the server answered 401. The token is kept in
 * sessionStorage: for this browser tab's session only.
 */
export function TokenPrompt() {
  const [state, setState] = useState<AuthState>(authState());
  const [value, setValue] = useState('');
  useEffect(() => subscribeAuth(setState), []);
  if (!state.required) return null;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) setToken(value.trim());
  };
  return (
    <div className="modal-backdrop">
      <form className="modal token-prompt" role="dialog" aria-modal="true" aria-label="API token" onSubmit={submit}>
        <header className="modal-head">
          <h2>This server needs an API token</h2>
        </header>
        <div className="modal-body">
          <p>
            It was started with <code>--auth-token</code> (or <code>$FRESHET_AUTH_TOKEN</code>). Enter that token to use the catalog. It is kept for
            this browser session only.
          </p>
          {state.rejected && (
            <p className="inline-error" role="alert">
              The server refused that token.
            </p>
          )}
          <label className="field">
            <span>Token</span>
            <input type="password" name="token" autoComplete="off" autoFocus value={value} onChange={(e) => setValue(e.target.value)} />
          </label>
        </div>
        <footer className="modal-foot">
          <button type="submit" className="btn btn-primary" disabled={!value.trim()}>
            Continue
          </button>
        </footer>
      </form>
    </div>
  );
}
