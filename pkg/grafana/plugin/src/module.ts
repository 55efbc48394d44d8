import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { DataSource } from './datasource';
import { LeaklineOptions, LeaklineQuery } from './types';

export const plugin = new DataSourcePlugin<DataSource, LeaklineQuery, LeaklineOptions>(DataSource)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
