/**
 * Webhook signatures: `Grove-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
 * with `Grove-Timestamp: <unix seconds>`. The SDK's verifyWebhook() checks the same.
 */
import { createHmac } from 'node:crypto';

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}
