/** Object ids: SHA-1, 40 lowercase hex digits (Grove repositories use object-format=sha1). */

export const ZERO_OID = '0'.repeat(40);

const OID_PATTERN = /^[0-9a-f]{40}$/;

export function isOid(value: string): boolean {
  return OID_PATTERN.test(value);
}

export function isZeroOid(oid: string): boolean {
  return oid === ZERO_OID;
}
