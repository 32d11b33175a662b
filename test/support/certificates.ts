import { X509Certificate } from "node:crypto";
import { localhostCertificate } from "./tls";

/** A client certificate PEM (certificate + private key) and its SHA-1 thumbprint. */
export async function clientCertificatePem(): Promise<{ pem: string; thumbprint: string }> {
  const { cert, key } = await localhostCertificate();
  return { pem: `${cert}\n${key}`, thumbprint: new X509Certificate(cert).fingerprint.replace(/:/g, "") };
}
