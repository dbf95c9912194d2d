/**
 * A throwaway certificate authority for tests, made with the openssl command: P-256 keys,
 * certificates valid for two days. `server()` certificates carry the given IPs and DNS names as
 * subjectAltName (what Docker's `--tlsverify` clients and node:tls check); `client()` ones are
 * for clientAuth (what `dockerd --tlsverify` demands of its callers). Files are PEM; the paths
 * follow Docker's names when one directory holds one identity (ca.pem, cert.pem, key.pem).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CertFiles {
  /** The CA certificate (the same file for every identity). */
  ca: string;
  cert: string;
  key: string;
  /** A directory holding ca.pem, cert.pem and key.pem (DOCKER_CERT_PATH layout). */
  dir: string;
}

export interface TestPki {
  dir: string;
  caCert: string;
  server(name: string, san: { ips?: string[]; dns?: string[] }): CertFiles;
  client(name: string): CertFiles;
  /** Reads an identity's files, as node:tls / node:https options want them. */
  tlsOptions(files: CertFiles): { ca: Buffer; cert: Buffer; key: Buffer };
  remove(): void;
}

export function whyNoOpenssl(): string {
  const r = spawnSync('openssl', ['version']);
  return r.status === 0 ? '' : 'the openssl command is not installed';
}

export function createPki(parent = '/tmp'): TestPki {
  const dir = mkdtempSync(join(parent, 'ck-pki-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  const ssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const newKey = (path: string) => ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);

  const caKey = join(dir, 'ca-key.pem');
  const caCert = join(dir, 'ca.pem');
  newKey(caKey);
  ssl(['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=clipper test CA', '-days', '2', '-out', caCert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);

  const issue = (name: string, extensions: string[]): CertFiles => {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`certificate name ${name}: letters, digits, . _ - only`);
    const d = join(dir, name);
    mkdirSync(d);
    const key = join(d, 'key.pem');
    const cert = join(d, 'cert.pem');
    const csr = join(d, 'req.csr');
    const ext = join(d, 'ext.cnf');
    newKey(key);
    ssl(['req', '-new', '-key', key, '-subj', `/CN=${name}`, '-out', csr]);
    writeFileSync(ext, extensions.join('\n') + '\n');
    ssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', `0x${randomBytes(8).toString('hex')}`,
      '-days', '2', '-out', cert, '-extfile', ext]);
    writeFileSync(join(d, 'ca.pem'), readFileSync(caCert));
    return { ca: caCert, cert, key, dir: d };
  };

  return {
    dir,
    caCert,
    server: (name, san) => {
      const alt = [...(san.ips ?? []).map((ip) => `IP:${ip}`), ...(san.dns ?? []).map((d) => `DNS:${d}`)];
      if (!alt.length) throw new Error('a server certificate needs at least one IP or DNS name');
      return issue(name, [`subjectAltName=${alt.join(',')}`, 'extendedKeyUsage=serverAuth', 'keyUsage=critical,digitalSignature,keyAgreement']);
    },
    client: (name) => issue(name, ['extendedKeyUsage=clientAuth', 'keyUsage=critical,digitalSignature,keyAgreement']),
    tlsOptions: (f) => ({ ca: readFileSync(f.ca), cert: readFileSync(f.cert), key: readFileSync(f.key) }),
    remove: () => {
      removeDir();
      process.removeListener('exit', removeDir);
    },
  };
}
