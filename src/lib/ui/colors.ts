import chalk from 'chalk'

// chalk's colour detection does not read NO_COLOR (https://no-color.org); honour it here.
if (process.env.NO_COLOR) chalk.level = 0

export const mark = {
  ok: () => chalk.green('✓'),
  warn: () => chalk.yellow('!'),
  fail: () => chalk.red('✗'),
  info: () => chalk.cyan('•'),
}

export {chalk}
