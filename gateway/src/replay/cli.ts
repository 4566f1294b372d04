/** `pgward replay`: placeholder until the replay tool lands (issue: policy CI). */
export async function runReplayCli(_args: string[]): Promise<number> {
  process.stderr.write('pgward: replay is not implemented yet\n');
  return 2;
}
