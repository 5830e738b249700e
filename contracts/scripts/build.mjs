// Compiles every contracts/src/*.sol with the pinned solc (package.json) into
// contracts/artifacts/<Contract>.json = {contractName, abi, bytecode, deployedBytecode}.
// `--check` compiles into memory and exits 1 if any committed artifact differs (CI runs it).
import { readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const check = process.argv.includes("--check");

const sources = {};
for (const file of readdirSync(join(root, "src")).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: readFileSync(join(root, "src", file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    // Cancun: Fogchain runs Prague rules, and solc 0.8.30's Prague output needs nothing Cancun lacks.
    evmVersion: "cancun",
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
let stale = [];
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (c.evm.bytecode.object.length === 0) continue; // interfaces and abstract contracts
    const artifact = {
      contractName: name,
      sourceName: `src/${file}`,
      compiler: `solc ${solc.version()}`,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    const text = JSON.stringify(artifact, null, 2) + "\n";
    const path = join(root, "artifacts", `${name}.json`);
    if (check) {
      if (!existsSync(path) || readFileSync(path, "utf8") !== text) stale.push(name);
    } else {
      writeFileSync(path, text);
      console.log(`artifacts/${name}.json`);
    }
  }
}
if (stale.length) {
  console.error(`artifacts out of date: ${stale.join(", ")}; run \`npm run build --prefix contracts\` and commit`);
  process.exit(1);
}
if (check) console.log("artifacts up to date");
