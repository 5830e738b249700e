// What the chain says, in words a shopper understands. The node's messages follow geth
// (docs/security.md); reverts carry the contract's require() text.

const RULES = [
  [/wrong price/i, 'The amount must be exactly the listed price.'],
  [/already sold/i, 'Someone else bought this item first.'],
  [/seller cannot buy/i, 'You are the seller of this item, so you cannot buy it.'],
  [/insufficient funds/i, 'This account does not have enough ETH for the price and the fee.'],
  [/underpriced|fee cap less than block base fee|max fee per gas less than/i, 'The network asks for a higher fee right now. Try again.'],
  [/nonce too low|already known/i, 'Another transaction from this account went first. Try again.'],
  [/not permitted|permission/i, 'This account may not make transactions on this network. Ask an administrator to permit it.'],
  [/rate limit|429|too many/i, 'Too many requests. Wait a moment and try again.'],
  [/User rejected|denied/i, 'You cancelled the request in your wallet.'],
  [/not the owner|not a genuine|not in this locker|already released|expired/i, null],
  [/unauthorized|invalid username or password|credentials/i, 'Wrong user name or password.'],
  [/Failed to fetch|NetworkError|no node reachable/i, 'The network cannot be reached. Check your connection and try again.'],
];

/** A sentence for error `e` (the original text is kept after it when it adds something). */
export function friendly(e) {
  const raw = e?.shortMessage ?? e?.details ?? e?.message ?? String(e);
  for (const [pattern, words] of RULES) {
    if (pattern.test(raw)) return words ?? raw;
  }
  if (/revert/i.test(raw)) return `The contract refused: ${raw.replace(/^.*revert(ed)?:?\s*/i, '')}`;
  return raw;
}
