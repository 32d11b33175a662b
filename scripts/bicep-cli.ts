import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The real Bicep compiler: `bicep` on PATH, else `az bicep`, else NuGet's Azure.Bicep.CommandLine.linux-x64
 * restored with `dotnet` into `.tools/` (ignored by git). Answers how to run it, or why it cannot be had.
 */
export const bicepPackageVersion = "0.49.2";
const toolsFolder = join(process.cwd(), ".tools", "bicep");

export type BicepCli = { run: (args: string[]) => { status: number; output: string }; source: string } | { unavailable: string };

export function findBicep(): BicepCli {
  if (onPath("bicep", ["--version"])) return cli("bicep", [], "bicep on PATH");
  if (onPath("az", ["bicep", "version"])) return cli("az", ["bicep"], "az bicep");
  if (!onPath("dotnet", ["--version"])) return { unavailable: "neither bicep, az nor dotnet is on PATH, so the Bicep compiler cannot be had here" };
  const binary = join(toolsFolder, "packages", "azure.bicep.commandline.linux-x64", bicepPackageVersion, "tools", "bicep");
  if (!existsSync(binary)) {
    if (process.platform !== "linux" || process.arch !== "x64")
      return { unavailable: `the NuGet Bicep package is for linux-x64, not ${process.platform}-${process.arch}` };
    mkdirSync(toolsFolder, { recursive: true });
    writeFileSync(
      join(toolsFolder, "bicep.csproj"),
      `<Project Sdk="Microsoft.NET.Sdk">\n  <PropertyGroup><TargetFramework>net10.0</TargetFramework></PropertyGroup>\n  <ItemGroup><PackageDownload Include="Azure.Bicep.CommandLine.linux-x64" Version="[${bicepPackageVersion}]" /></ItemGroup>\n</Project>\n`,
    );
    const restore = spawnSync("dotnet", ["restore", join(toolsFolder, "bicep.csproj"), "--packages", join(toolsFolder, "packages")], {
      encoding: "utf8",
      timeout: 240_000,
    });
    if (restore.status !== 0 || !existsSync(binary))
      return {
        unavailable: `dotnet could not restore Azure.Bicep.CommandLine.linux-x64 ${bicepPackageVersion}: ${(restore.stdout + restore.stderr).trim().split("\n").slice(-3).join(" ")}`,
      };
    chmodSync(binary, 0o755);
  }
  return cli(binary, [], `NuGet Azure.Bicep.CommandLine.linux-x64 ${bicepPackageVersion}`);
}

function onPath(command: string, args: string[]): boolean {
  try {
    execFileSync(command, args, { stdio: "ignore", timeout: 60_000 });
    return true;
  } catch {
    return false;
  }
}

function cli(command: string, prefix: string[], source: string): BicepCli {
  return {
    source,
    run: (args) => {
      const result = spawnSync(command, [...prefix, ...args], { encoding: "utf8", timeout: 120_000 });
      return { status: result.status ?? 1, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
    },
  };
}
