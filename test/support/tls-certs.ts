import { execFile } from "node:child_process";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface CertificateAuthority {
  /** PEM certificate of the CA: what clients trust (`source.tls.caFile`, `kafka.tls.caFile`). */
  caFile: string;
  caKeyFile: string;
}

export interface ServerCertificate {
  certFile: string;
  /** Unencrypted PKCS#8 key ("BEGIN PRIVATE KEY"), as both PostgreSQL and Kafka's PEM keystore take it. */
  keyFile: string;
  /** Key and certificate in one file: Kafka's `ssl.keystore.location` with `ssl.keystore.type=PEM`. */
  keystoreFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync("openssl", args, { cwd, timeout: 60_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.message}\n${e.stderr ?? ""}`);
  }
}

/** A self-signed CA in `dir` (EC P-256: generated in milliseconds, unlike RSA). */
export async function createCertificateAuthority(dir: string, name: string): Promise<CertificateAuthority> {
  mkdirSync(dir, { recursive: true });
  const caKeyFile = join(dir, `${name}-ca.key`);
  const caFile = join(dir, `${name}-ca.crt`);
  await openssl(
    ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", caKeyFile],
    dir,
  );
  await openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      caKeyFile,
      "-sha256",
      "-days",
      "2",
      "-subj",
      `/CN=diffrelay test CA ${name}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      caFile,
    ],
    dir,
  );
  return { caFile, caKeyFile };
}

/**
 * A server certificate signed by `ca` for 127.0.0.1 and localhost (IP and DNS SANs: clients verify the
 * host they dialled, and the tests dial 127.0.0.1).
 */
export async function issueServerCertificate(
  ca: CertificateAuthority,
  dir: string,
  name: string,
): Promise<ServerCertificate> {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  await openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", keyFile], dir);
  await openssl(["req", "-new", "-key", keyFile, "-subj", `/CN=${name}`, "-out", csrFile], dir);
  writeFileSync(
    extFile,
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "",
    ].join("\n"),
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      csrFile,
      "-CA",
      ca.caFile,
      "-CAkey",
      ca.caKeyFile,
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      extFile,
      "-out",
      certFile,
    ],
    dir,
  );
  const keystoreFile = join(dir, `${name}-keystore.pem`);
  writeFileSync(keystoreFile, readFileSync(keyFile, "utf8") + readFileSync(certFile, "utf8"));
  chmodSync(keyFile, 0o600);
  chmodSync(keystoreFile, 0o600);
  return { certFile, keyFile, keystoreFile };
}
